"""Facts a job seeker would search by, mined from one listing, and the query styles built from them.

Styles mirror how people search: `keyword` (search-box terms), `natural` (a first-person request), `paraphrase`
(abbreviated or jargon-shifted role + a duty), `skill` (skills/duties mined from the description), `constraint`
(a filter the listing satisfies: place, remote, pay floor, part-time, seniority) and, when asked for, `specifics`
(the role + 2-3 of the listing's distinctive keyphrases + its city or employer type: what decides on a corpus where
every listing has the same role). The title is never used verbatim.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from rag_app.compose import BOILERPLATE
from rag_app.filters import EMPLOYMENT_TYPES, parse_pay, workplace_of
from rag_app.places import state_names
from rag_app.records import JobListing

SENIORITY = re.compile(r"\b(senior|sr\.?|junior|jr\.?|lead|principal|staff|i{1,3}|iv|level \d|entry[- ]level|part[- ]time|full[- ]time)\b", re.I)
ABBREVIATIONS = [
    ("registered nurse", "RN"), ("licensed practical nurse", "LPN"), ("certified nursing assistant", "CNA"), ("certified public accountant", "CPA"),
    ("software engineer", "SWE"), ("software developer", "software dev"), ("project manager", "PM"), ("product manager", "PM"),
    ("human resources", "HR"), ("information technology", "IT"), ("quality assurance", "QA"), ("business analyst", "BA"),
    ("vice president", "VP"), ("electrical engineer", "EE"), ("mechanical engineer", "ME"), ("customer service", "CS"),
    ("engineering", "eng"), ("engineer", "eng"), ("manager", "mgr"), ("assistant", "asst"), ("representative", "rep"),
    ("technician", "tech"), ("administrator", "admin"), ("administrative", "admin"), ("development", "dev"), ("coordinator", "coord"),
    ("director", "dir"), ("department", "dept"), ("associate", "assoc"), ("specialist", "spec"),
]
SYNONYMS = {"nurse": "nursing", "developer": "programmer", "engineer": "engineering", "chef": "cook", "cook": "kitchen",
            "teacher": "educator", "professor": "faculty", "housekeeper": "hotel room cleaner", "server": "waiter",
            "referee": "sports official", "trainer": "fitness coach", "accountant": "accounting", "driver": "trucking",
            "analyst": "analytics", "counselor": "counseling", "librarian": "library", "electrician": "electrical",
            "designer": "design", "recruiter": "recruiting", "attendant": "housekeeping", "officer": "officer role"}
DUTY_VERBS = set("""manage develop design build maintain prepare perform provide support lead coordinate assist ensure review conduct analyze
analyse create implement monitor operate train work collaborate communicate respond deliver oversee handle process install inspect
troubleshoot repair write plan schedule track report evaluate teach care clean cook drive load sell serve officiate supervise administer
document research test execute organize organise participate identify resolve recommend establish negotiate present greet answer complete
verify update coach instruct mentor advise audit reconcile underwrite program configure deploy optimize investigate survey estimate draft
assess calculate compile consult construct design diagnose direct distribute enforce facilitate guide interpret lift market measure
order partner promote protect purchase recruit run set sort stock transport welcome own partner""".split())
DUTY_VERBS -= {"work", "ensure", "participate", "collaborate", "communicate", "complete"}  # lead boilerplate lines, not duties
STYLES = ("keyword", "natural", "paraphrase", "skill", "constraint")
STYLE_WEIGHTS = (0.3, 0.3, 0.15, 0.1, 0.15)
# (employer type a searcher names, pattern on the company name or None, pattern on the posting's opening or None)
EMPLOYER_TYPES = [
    ("university", r"\b(university|college)\b", r"\b(university|college) campus\b"),
    ("hospital", r"\b(hospital|medical center|health system|clinic)s?\b", None),
    ("school district", r"\b(school district|unified school|public schools)\b", None),
    ("government agency", r"\b(county|city|state|department) of\b", r"\b(government|public) agency\b"),
    ("nonprofit", r"\b(foundation|non-?profit)\b", r"\b(non-?profit|not-for-profit)\b"),
    ("startup", None, r"\b(start-?up|seed[- ]stage|series [a-d]|venture[- ]backed)\b"),
    ("bank", r"\b(bank|bancorp|credit union)\b", None),
    ("consulting firm", r"\b(consulting|consultants|advisors)\b", r"\b(consulting|consultancy) firm\b"),
    ("staffing agency", r"\b(staffing|recruiting|search group|talent)\b", r"\bstaffing (agency|firm)\b"),
    ("insurance company", r"\b(insurance|assurance|mutual)\b", None),
]


@dataclass
class Facts:
    role: str
    city: str | None = None
    state: str | None = None
    workplace: str = "On-site"
    employment: list[str] = field(default_factory=list)
    pay: dict = field(default_factory=dict)
    hourly: bool = False
    seniority: str | None = None
    terms: list[str] = field(default_factory=list)
    duties: list[str] = field(default_factory=list)
    employer_type: str | None = None


def core_role(title: str) -> str:
    """'Senior ICU Registered Nurse - Nights (Float Pool)' -> 'ICU Registered Nurse'; 'Engineer 3' -> 'Engineer'."""
    role = re.split(r"\s+[-–|/]|[-–|/]\s+|,|\(|\[|:", title)[0]
    role = SENIORITY.sub(" ", role)
    role = re.sub(r"\S*\d\S*|#|\b(remote|hybrid|on-?site|contractor|temp)\b", " ", role, flags=re.I)  # levels, req codes, workplace
    return " ".join(role.split()) or title


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


FILLER_END = frozenset("& and or the of to in for with a an as at on by from that who which our your their".split())


def short_duty(duty: str, max_words: int = 8) -> str:
    """A duty line cut to a few words a searcher would type, without a dangling 'and'/'of' at the end."""
    words = duty.split()[:max_words]
    while len(words) > 2 and words[-1].lower() in FILLER_END:
        words.pop()
    return " ".join(words)


def split_location(location: str | None) -> tuple[str | None, str | None]:
    if not location:
        return None, None
    m = re.search(r"([A-Za-z .'-]+),\s*([A-Z]{2})\b", location)
    if m:
        return m.group(1).strip().split(" in ")[-1], m.group(2)
    parts = [p.strip() for p in location.split(",") if p.strip()]
    return (parts[0] if parts else None), (parts[-1] if len(parts) > 1 else None)


def duties_of(description: str) -> list[str]:
    out = []
    for line in description.splitlines():
        line = line.strip().rstrip(".;:")
        line = re.split(r"[,;:(]", line.lstrip("-•*·– ").strip())[0].strip()
        words = line.split()[:10]
        if 4 <= len(words) <= 14 and words[0].lower().rstrip("s") in DUTY_VERBS and not BOILERPLATE.search(line):
            out.append(" ".join([words[0].lower().rstrip("s") if words[0].lower().rstrip("s") in DUTY_VERBS else words[0].lower(), *words[1:]]))
    return out[:12]


def _is_hourly(salary: str | None) -> bool:
    text = (salary or "").lower()
    amounts = [float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", text)]
    return "hour" in text or (bool(amounts) and max(amounts) < 500 and "year" not in text)


def employer_type(company: str | None, opening: str) -> str | None:
    """'Fremont Bank' -> 'bank'; a posting that opens 'We are a Series B start-up' -> 'startup'; None when unsure."""
    for kind, by_name, by_text in EMPLOYER_TYPES:
        if (by_name and re.search(by_name, company or "", re.I)) or (by_text and re.search(by_text, opening, re.I)):
            return kind
    return None


def facts_of(listing: JobListing, terms: list[str]) -> Facts:
    city, state = split_location(listing.location)
    employment = [e for e in EMPLOYMENT_TYPES if e.lower() in (listing.work_type or "").lower()]
    level = re.search(r"\b(senior|sr|lead|principal|junior|jr|entry)\b", f"{listing.title} {listing.experience_level or ''}", re.I)
    return Facts(role=core_role(listing.title), city=city, state=state, workplace=workplace_of(listing.work_type, listing.location),
                 employment=employment, pay=parse_pay(listing.salary), hourly=_is_hourly(listing.salary), seniority=level.group(1).lower() if level else None,
                 terms=terms, duties=duties_of(listing.description), employer_type=employer_type(listing.company, listing.description[:1000]))


def abbreviate(role: str, rng: random.Random) -> str:
    out = role.lower()
    for long, short in rng.sample(ABBREVIATIONS, k=len(ABBREVIATIONS)):
        if re.search(rf"\b{long}\b", out) and rng.random() < 0.8:
            out = re.sub(rf"\b{long}\b", short, out)
    if out == role.lower():
        words = out.split()
        swapped = [SYNONYMS.get(w, w) for w in words]
        tail = words[-1:] if len(words) > 2 and words[-2] in FILLER_END else words[-2:]
        out = " ".join(swapped) if swapped != words else " ".join(tail) if len(words) > 2 else out
    return out


def place(f: Facts, rng: random.Random) -> str:
    options = [x for x in (f.city, state_names().get(f.state or "", f.state), f.state, f"{f.city} {f.state}" if f.city and f.state else None)
               if x and "remote" not in x.lower()]
    if f.workplace == "Remote":
        options.append("remote")
    return rng.choice(options) if options else ""


def pay_floor(f: Facts) -> str | None:
    if not f.pay or f.pay.get("currency") != "USD":
        return None
    low = f.pay["pay_min"]
    if f.hourly:
        return f"${max(int(math.floor(low / 2080)) - 1, 8)}+ an hour"
    return f"at least ${int(low // 5000 * 5)}k" if low >= 20_000 else None


def render(style: str, f: Facts, rng: random.Random) -> str | None:
    """One query of `style`; every style names the occupation (plainly, abbreviated or paraphrased), as seekers do."""
    role = f.role.lower()
    alias = abbreviate(f.role, rng)
    who = rng.choice([role, alias])
    terms = rng.sample(f.terms, k=min(len(f.terms), rng.randint(1, 3)))
    where = place(f, rng)
    duty = short_duty(rng.choice(f.duties)) if f.duties else None
    emp = f.employment[0].lower() if f.employment else "full-time"
    if style == "keyword":
        extras = [x for x in ("remote" if f.workplace == "Remote" else None, "part time" if "Part-time" in f.employment else None,
                              f.seniority) if x and rng.random() < 0.3]
        parts = [*terms, who] if rng.random() < 0.25 else [who, *terms]
        words = " ".join(p for p in (*parts, *extras, where) if p).split()
        return " ".join(w for i, w in enumerate(words) if w.lower() not in {x.lower() for x in words[:i]})
    if style == "natural":
        in_where = f" in {where}" if where and where != "remote" else " working remotely" if where == "remote" else ""
        templates = [f"I'm looking for {article(emp)} {emp} {role} job{in_where}",
                     f"any openings for {article(role)} {role} who knows {' and '.join(terms)}?" if terms else None,
                     f"I want to work as {article(role)} {role} where I {duty}" if duty else None,
                     f"looking for {article(who)} {who} job{in_where}, I {duty}" if duty else None,
                     f"I have experience with {', '.join(terms)} and want {article(role)} {role} position{in_where}" if terms else None,
                     f"is anyone hiring {article(role)} {role}{in_where}?",
                     f"I'm {article(alias)} {alias} looking for {emp} work{in_where}" + (f", ideally with {terms[0]}" if terms else "")]
        return rng.choice([t for t in templates if t])
    if style == "paraphrase":
        tail = duty or " ".join(terms)
        return f"{alias} - {tail}" + (f", {f.state}" if f.state and rng.random() < 0.6 else "") if tail else None
    if style == "specifics":
        return specifics(f, who, rng)
    if style == "skill":
        options = [f"{' '.join(terms)} {who}" if terms else None, f"{who} with {terms[0]} experience" if terms else None,
                   f"{who} jobs {duty}" if duty else None, f"{duty} {who}" if duty else None]
        options = [o for o in options if o]
        return rng.choice(options) if options else None
    constraints = [c for c in (
        "remote" if f.workplace == "Remote" else None, "hybrid" if f.workplace == "Hybrid" else None,
        "part-time" if "Part-time" in f.employment else None, pay_floor(f),
        f"in {f.city} {f.state}" if f.city and f.state else None, f"{f.seniority} level" if f.seniority else None) if c]
    if not constraints:
        return None
    picked = rng.sample(constraints, k=min(len(constraints), rng.randint(1, 2)))
    topic = f" {terms[0]}" if terms and rng.random() < 0.4 else ""
    return f"{who}{topic} job " + " ".join(picked)


def specifics(f: Facts, who: str, rng: random.Random) -> str | None:
    """The role with 2-3 of the listing's keyphrases and, often, its city or employer type."""
    if len(f.terms) < 2:
        return None
    picked = rng.sample(f.terms, k=min(len(f.terms), rng.randint(2, 3)))
    city = f.city if f.city and "remote" not in f.city.lower() and rng.random() < 0.6 else None
    kind = f.employer_type if rng.random() < 0.6 else None
    listed = f"{', '.join(picked[:-1])} and {picked[-1]}"
    options = [" ".join(x for x in (who, *picked, kind, city) if x),
               f"{who} job with {listed}" + (f" at {article(kind)} {kind}" if kind else "") + (f" in {city}" if city else ""),
               f"{' '.join(picked)} {who}" + (f" {kind}" if kind else "") + (f" {city}" if city else "")]
    return rng.choice(options)
