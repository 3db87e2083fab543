"""Listing filters: what a job seeker constrains (place, workplace, employment type, pay floor, seniority).

At ingest every chunk gets derived, filterable metadata (`workplace`, `employment`, `pay_min`, `pay_max`, `pay_mid`
annualised, `currency`, `level`), so retrievers can push equality/range filters down to Chroma; the location (states
and cities as whole words, `rag_app.places.location_matches`) and the rest are checked in Python on the collapsed
listings (`ListingFilters.matches`).
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from rag_app.places import location_matches

Workplace = Literal["Remote", "Hybrid", "On-site"]
WORKPLACES: tuple[str, ...] = get_args(Workplace)
EMPLOYMENT_TYPES = ("Full-time", "Part-time", "Contract", "Temporary", "Internship", "Per diem", "Seasonal")
PERIODS = {"hour": 2080, "hr": 2080, "day": 260, "week": 52, "month": 12, "year": 1, "yr": 1, "annum": 1, "annual": 1}
CURRENCIES = [("MX$", "MXN"), ("C$", "CAD"), ("A$", "AUD"), ("S$", "SGD"), ("$", "USD"), ("£", "GBP"), ("€", "EUR"), ("₹", "INR")]
_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*([kK])?")
# field values first (experience_level), then unambiguous title words only
LEVELS = {"intern": "Internship", "entry": "Entry level", "junior": "Entry level", "associate": "Entry level", "mid-senior": "Senior", "mid": "Mid level",
          "senior": "Senior", "lead": "Lead", "principal": "Lead", "director": "Director", "executive": "Executive"}
# How far apart levels are for a lenient (understood) seniority constraint: Senior and Lead are one rung.
LEVEL_RANK = {"Internship": 0, "Entry level": 1, "Mid level": 2, "Senior": 3, "Lead": 3, "Director": 4, "Executive": 5}
TITLE_LEVELS = {"intern": "Internship", "junior": "Entry level", "jr": "Entry level", "senior": "Senior", "sr": "Senior",
                "lead": "Lead", "principal": "Lead", "director": "Director"}


def parse_pay(text: str | None) -> dict[str, Any]:
    """'$24 - $30 an hour' -> {'pay_min': 49920.0, 'pay_max': 62400.0, 'pay_mid': 56160.0, 'currency': 'USD'} (annualised)."""
    if not text:
        return {}
    amounts = [float(n.replace(",", "")) * (1000 if k else 1) for n, k in _AMOUNT.findall(text)]
    amounts = [a for a in amounts if a > 0]
    if not amounts:
        return {}
    lower = text.lower()
    per_year = next((mult for word, mult in PERIODS.items() if re.search(rf"\b{word}", lower)), None)
    if per_year is None:  # no period given: small numbers are hourly, large ones yearly
        per_year = 2080 if max(amounts) < 500 else 1
    currency = next((code for sym, code in CURRENCIES if sym in text), None) or next(
        (code for _, code in CURRENCIES if code in text.upper()), "USD")
    lo, hi = min(amounts[:2]) * per_year, max(amounts[:2]) * per_year
    return {"pay_min": lo, "pay_max": hi, "pay_mid": (lo + hi) / 2, "currency": currency}


def workplace_of(work_type: str | None, location: str | None) -> Workplace:
    text = f"{work_type or ''} {location or ''}".lower()
    if "hybrid" in text:
        return "Hybrid"
    return "Remote" if "remote" in text else "On-site"


def level_of(experience_level: str | None, title: str) -> str | None:
    if experience_level:
        return next((label for word, label in LEVELS.items() if re.search(rf"\b{word}", experience_level.lower())), experience_level)
    return next((label for word, label in TITLE_LEVELS.items() if re.search(rf"\b{word}\b", title.lower())), None)


def derived_metadata(work_type: str | None, location: str | None, salary: str | None, experience_level: str | None,
                     title: str) -> dict[str, Any]:
    """Flat, Chroma-storable filter fields for one listing."""
    employment = [e for e in EMPLOYMENT_TYPES if e.lower() in (work_type or "").lower()]
    meta: dict[str, Any] = {"workplace": workplace_of(work_type, location), "employment": ", ".join(employment)}
    if level := level_of(experience_level, title):
        meta["level"] = level
    return meta | parse_pay(salary)


class ListingFilters(BaseModel):
    """Constraints a retriever applies to listings. Empty fields constrain nothing."""

    location: str | None = Field(None, description="A state code or name, a city, or both, e.g. 'PA', 'Pennsylvania', 'Austin' or "
                                       "'Austin, TX' (whole words, case-insensitive; 'Remote' matches as a substring).")
    workplace: list[Workplace] = Field(default_factory=list, description="Allowed workplaces, e.g. ['Remote', 'Hybrid'].")
    employment: str | None = Field(None, description="Employment type the listing must include, e.g. 'Part-time'.")
    min_pay: float | None = Field(None, ge=0, description="Annualised pay floor; compared to the listing's range midpoint.")
    currency: str = Field("USD", description="Currency of min_pay; listings paid in another currency do not pass a pay floor.")
    level: str | None = Field(None, description="Seniority, e.g. 'Senior' or 'Entry level'.")
    lenient: bool = Field(False, description="Read postings as a job seeker does (constraints understood from a question): a Remote posting "
                                             "meets a place, unstated employment type or seniority meets those, a neighbouring level counts.")

    def is_empty(self) -> bool:
        return not (self.location or self.workplace or self.employment or self.min_pay or self.level)

    def chroma_where(self) -> dict[str, Any] | None:
        """The part Chroma can evaluate (equality and ranges on derived metadata)."""
        clauses: list[dict[str, Any]] = []
        if self.workplace:
            clauses.append({"workplace": {"$in": list(self.workplace)}})
        if self.min_pay:
            clauses += [{"pay_mid": {"$gte": float(self.min_pay)}}, {"currency": {"$eq": self.currency}}]
        if self.level and not self.lenient:
            clauses.append({"level": {"$eq": self.level}})
        return None if not clauses else clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def matches(self, meta: dict[str, Any]) -> bool:
        """Every constraint, checked on one listing's metadata."""
        if self.location and not (location_matches(self.location, str(meta.get("location") or ""))
                                  or self.lenient and meta.get("workplace") == "Remote"):
            return False
        if self.workplace and meta.get("workplace") not in self.workplace:
            return False
        employment = str(meta.get("employment") or "")
        if self.employment and self.employment.lower() not in employment.lower() and not (self.lenient and not employment):
            return False
        if self.min_pay and (meta.get("currency") != self.currency or float(meta.get("pay_mid") or 0) < self.min_pay):
            return False
        if self.level and self.lenient:  # read from the stored fields when there, so older collections agree with today's vocabulary
            level = level_of(meta.get("experience_level"), str(meta["title"])) if meta.get("title") else meta.get("level")
            return level_fits(self.level, level)
        return not self.level or meta.get("level") == self.level

    @classmethod
    def parse(cls, items: list[str]) -> ListingFilters:
        """CLI form: ['location=TX', 'workplace=Remote,Hybrid', 'min_pay=90000', 'employment=Part-time', 'level=Senior']."""
        data: dict[str, Any] = {}
        for item in items:
            key, _, value = item.partition("=")
            if key not in cls.model_fields or not value:
                raise ValueError(f"filter {item!r}: use KEY=VALUE with KEY one of {', '.join(cls.model_fields)}")
            data[key] = [v.strip() for v in value.split(",")] if key == "workplace" else value
        return cls(**data)


def level_fits(wanted: str, level: str | None) -> bool:
    """Lenient seniority: unstated counts as met, and so does a neighbouring level (Senior accepts Mid level, Lead and
    Director); only a posting that clearly asks for another level misses it."""
    if not level:
        return True
    if wanted in LEVEL_RANK and level in LEVEL_RANK:
        return abs(LEVEL_RANK[wanted] - LEVEL_RANK[level]) <= 1
    return wanted == level
