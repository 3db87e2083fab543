"""Row -> JobListing: field mapping, HTML stripping, entity unescaping, whitespace collapsing, validation.

A row that cannot become a listing yields a reason string instead (the pipeline turns it into a `Reject`).
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Mapping
from typing import Any

from rag_app.records import JobListing

FIELDS = ("id", "title", "company", "location", "description", "salary", "work_type", "experience_level", "skills", "url")
REQUIRED = ("title", "description")
# Header fields (embedded with every chunk) bounded by ingest.max_field_chars; the title has its own bound.
BOUNDED_FIELDS = ("company", "location", "salary", "work_type", "experience_level")
# Column names seen in the wild, compared after lower-casing and dropping spaces, dashes and underscores.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "jobid", "jobkey", "listingid", "postingid"),
    "title": ("title", "jobtitle", "position", "positiontitle", "role"),
    "company": ("company", "companyname", "employer", "organization", "organisation", "hiringorganization"),
    "location": ("location", "joblocation", "city", "place"),
    "description": ("description", "jobdescription", "text", "body", "details", "jobdetails", "content"),
    "salary": ("salary", "pay", "compensation", "salaryrange", "wage"),
    "work_type": ("worktype", "jobtype", "employmenttype", "contracttype", "formattedworktype", "type"),
    "experience_level": ("experiencelevel", "seniority", "level", "formattedexperiencelevel", "senioritylevel"),
    "skills": ("skills", "skillsdesc", "requiredskills"),
    "url": ("url", "joburl", "jobpostingurl", "link", "applyurl"),
}
_TAG = re.compile(r"<\s*[a-zA-Z!/][^>]*>")
_INVISIBLE = re.compile(r"[\u00a0\u200b\u200c\u200d\u2060\ufeff]")
# Never text: NUL and other control characters, bidi embeddings/overrides/isolates and direction marks (they can make a
# listing read differently from how it is stored), and chat-template tokens (`<|im_start|>`) that could fake a turn.
_NEVER_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200e\u200f\u202a-\u202e\u2066-\u2069]|<\|[^|>\n]{0,60}\|>")
_SURROGATE = re.compile(r"[\udc80-\udcff]")


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name).lower())


def resolve_columns(columns: list[str], explicit: Mapping[str, str]) -> dict[str, str]:
    """Map listing fields to source columns: explicit mapping first, then known aliases. Unknown fields are ignored."""
    unknown = sorted(set(explicit) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown listing field(s) in the column map: {', '.join(unknown)} (fields: {', '.join(FIELDS)})")
    missing_cols = sorted(c for c in explicit.values() if c not in columns)
    if missing_cols:
        raise ValueError(f"mapped column(s) {', '.join(missing_cols)} not in the source (columns: {', '.join(columns)})")
    by_norm = {_norm(c): c for c in columns}
    mapping = dict(explicit)
    for field, names in ALIASES.items():
        if field not in mapping:
            found = next((by_norm[n] for n in names if n in by_norm and by_norm[n] not in mapping.values()), None)
            if found is not None:
                mapping[field] = found
    absent = [f for f in REQUIRED if f not in mapping]
    if absent:
        hint = " ".join(f"--map {f}=COLUMN" for f in absent)
        raise ValueError(f"no column for {', '.join(absent)} (columns: {', '.join(columns) or 'none'}); map it with {hint}")
    return mapping


def clean_text(value: str, multiline: bool = True) -> str:
    """Strip HTML (scripts and styles dropped), unescape entities, remove invisible characters, collapse whitespace."""
    if _TAG.search(value):
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(value, "html.parser")
        for tag in soup(["script", "style", "noscript", "iframe", "template"]):
            tag.decompose()
        for br in soup.find_all(["br", "p", "li", "div", "h1", "h2", "h3", "h4", "tr"]):
            br.insert_before("\n")
        value = soup.get_text()
    else:
        value = html.unescape(value)
    value = _INVISIBLE.sub(" ", _NEVER_TEXT.sub("", value)).replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        return " ".join(value.split())
    lines = [" ".join(line.split()) for line in value.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _scalar(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value


def _type_problem(field: str, value: Any) -> str | None:
    """Why `value` cannot fill `field`, or None: text fields take text (ids and other header fields also a number)."""
    if value is None or field == "skills":
        return None
    numbers_ok = field not in REQUIRED and not isinstance(value, bool)
    if isinstance(value, str) or (numbers_ok and isinstance(value, (int, float))):
        return None
    return f"{field} has wrong type {type(value).__name__}; expected text" + (" or a number" if field not in REQUIRED else "")


def to_listing(raw: Mapping[str, Any], mapping: Mapping[str, str], max_chars: int, min_chars: int, *,
               max_title_chars: int | None = None, max_field_chars: int | None = None) -> JobListing | str:
    """A clean JobListing, or the reason this row cannot be one. The `max_*` bounds are ingest settings (None: unbounded)."""
    values = {field: _scalar(raw.get(col)) for field, col in mapping.items()}
    for field, value in values.items():
        if isinstance(value, str) and _SURROGATE.search(value):
            pos = _SURROGATE.search(value).start()  # type: ignore[union-attr]
            return f"field '{field}' is not valid UTF-8 (bad byte 0x{ord(value[pos]) - 0xDC00:02x} at char {pos}); re-save the file as UTF-8"
    for field, value in values.items():
        if problem := _type_problem(field, value):
            return problem
    for field in REQUIRED:
        if not isinstance(values.get(field), str) or not values[field].strip():
            return f"missing {field}"
    bounds = {"description": ("max_description_chars", max_chars), "title": ("max_title_chars", max_title_chars),
              **{f: ("max_field_chars", max_field_chars) for f in BOUNDED_FIELDS}}
    for field, (setting, bound) in bounds.items():
        if bound is not None and isinstance(values.get(field), str) and len(values[field]) > bound:
            return f"{field} is {len(values[field]):,} chars, over ingest.{setting}={bound:,}"
    text = {f: clean_text(str(v), multiline=(f == "description")) if v is not None and f != "skills" else v for f, v in values.items()}
    if len(text["description"]) < min_chars:
        return f"description is {len(text['description'])} chars after cleaning (HTML/script only?), under ingest.min_description_chars={min_chars}"
    if not text["title"]:
        return "missing title (empty after cleaning)"
    for field in REQUIRED:
        if not any(c.isalnum() for c in text[field]):
            return f"{field} has no letters or digits (only symbols, punctuation or emoji)"
    skills = values.get("skills")
    if isinstance(skills, str):
        skills = [s.strip() for s in re.split(r"[,;|\n]", clean_text(skills)) if s.strip()]
    listing_id = str(text["id"]).strip() if text.get("id") not in (None, "") else _derived_id(text)
    extra = {k: _scalar(v) for k, v in raw.items() if k not in mapping.values() and isinstance(_scalar(v), (str, int, float, bool))}
    return JobListing(id=listing_id, title=text["title"], description=text["description"], company=text.get("company") or None,
                      location=text.get("location") or None, salary=text.get("salary") or None, work_type=text.get("work_type") or None,
                      experience_level=text.get("experience_level") or None, skills=list(skills or []), url=text.get("url") or None,
                      extra=extra)


def _derived_id(text: Mapping[str, Any]) -> str:
    key = "|".join(" ".join(str(text.get(f) or "").lower().split()) for f in ("title", "company")) + "|" + text["description"][:200].lower()
    return "job-" + hashlib.sha1(key.encode()).hexdigest()[:16]
