"""US places: the state table (from the maintained `us` package) and the one location test every filter uses.

`location_matches(wanted, location)` reads both sides as "city part, state part". A state is a two-letter code or a
state name standing alone in the last comma-separated part ("Erie, PA 16501", "Fresno, California 93701",
"Eureka, CA, US", "New York State", "Austin TX"), so the words "in", "or" and "me" of "Remote in Austin, TX" are
never Indiana, Oregon or Maine, and "Saint Paul, MN" is not in PA. Cities match as whole words of the part before the state
("Austin" matches "12 Oak St, Austin, TX 78702"; "Paul" does not match "Saint Paula"; "Madison" does not match
"9 Madison Ave, Albany, NY"). Everything is case-insensitive.
"""

from __future__ import annotations

import re
from functools import cache

COUNTRY_PARTS = frozenset({"us", "usa", "u.s.", "u.s.a.", "united states", "united states of america"})
_ZIP = r"(?:\s+\d{5}(?:-\d{4})?)?"
_NOTE = re.compile(r"\([^)]*\)")  # "Reno, NV (main office)"
_TRAILING_CODE = re.compile(rf"(.*\S)\s+([A-Za-z]{{2}}){_ZIP}")


@cache
def state_names() -> dict[str, str]:
    """Postal code -> name for the 50 states, DC and the inhabited territories ('PA' -> 'Pennsylvania')."""
    import us

    return {s.abbr: s.name for s in us.states.STATES_AND_TERRITORIES}


@cache
def _state_part() -> tuple[re.Pattern[str], re.Pattern[str], dict[str, str]]:
    names = state_names()
    codes = re.compile(rf"(?:US-)?((?:{'|'.join(names)})(?:\s*[-/]\s*(?:{'|'.join(names)}))*){_ZIP}", re.I)
    by_name = {name.lower(): code for code, name in names.items()}
    alternation = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    named = re.compile(rf"({alternation})(?:\s+(?:state|area))?{_ZIP}", re.I)
    return codes, named, by_name


def states_in(part: str) -> frozenset[str]:
    """The state codes a whole location part names: 'PA 15219' -> {'PA'}, 'California Area' -> {'CA'}, 'CA-NV' -> both."""
    codes, named, by_name = _state_part()
    part = part.strip()
    if m := codes.fullmatch(part):
        return frozenset(c.upper() for c in re.split(r"\s*[-/]\s*", m.group(1)))
    if m := named.fullmatch(part):
        return frozenset({by_name[m.group(1).lower()]})
    return frozenset()


def split_place(text: str, typed: bool = False) -> tuple[str, frozenset[str]]:
    """('city part', {state codes}): the last non-country part names the state when it can, the part before it the city.

    A code at the end of a part without a comma ("Austin TX") counts when written in capitals, or in any case when a
    person `typed` it as a filter ("austin tx"); in a listing "contact me" stays words.
    """
    parts = [p.strip() for p in _NOTE.sub(" ", text).split(",") if p.strip()]
    while len(parts) > 1 and parts[-1].lower() in COUNTRY_PARTS:
        parts.pop()
    if parts and (states := states_in(parts[-1])):
        codes = _state_part()[0]  # "Reno, NV 89501, NV 89501, US" repeats the state's code
        city = [p for p in parts[:-1] if not codes.fullmatch(p)]
        return (city[-1] if city else ""), states
    m = _TRAILING_CODE.fullmatch(parts[-1]) if parts else None
    if m and (typed or m.group(2).isupper()) and (states := states_in(m.group(2))):
        return m.group(1), states  # "Austin TX", "Washington DC 20001"
    return ", ".join(parts), frozenset()


def _has_words(phrase: str, text: str) -> bool:
    words = phrase.split()
    return bool(words) and re.search(r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)", text, re.I) is not None


def location_matches(wanted: str | None, location: str | None) -> bool:
    """Does a listing at `location` satisfy a location constraint `wanted` ('PA', 'Pennsylvania', 'Austin', 'Austin, TX')?"""
    want = " ".join((wanted or "").split())
    if not want:
        return True
    location = location or ""
    if "remote" in want.lower():  # "Remote" postings and filters keep plain substring matching
        return want.lower() in location.lower()
    want_city, want_states = split_place(want, typed=True)
    city, states = split_place(location)
    if not want_states:
        return _has_words(want_city, city)
    if want_states & states and (not want_city or _has_words(want_city, city)):
        return True
    # a lone state name is also a city's name: "Washington" finds "Washington, DC", "Indiana" finds "Indiana, PA"
    return not want_city and not re.fullmatch(r"[A-Za-z]{2}", want) and _has_words(want, city)
