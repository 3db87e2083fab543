from __future__ import annotations

import pytest

from ingest.clean import clean_text, resolve_columns, to_listing

MAP = {"id": "id", "title": "title", "description": "description", "company": "company"}


def test_html_is_stripped_scripts_dropped_entities_unescaped() -> None:
    raw = "<div><p>Build&nbsp;APIs &amp; pipelines</p><script>alert('x')</script><style>p{}</style><ul><li>Go</li><li>SQL</li></ul></div>"
    text = clean_text(raw)
    assert "alert" not in text and "p{}" not in text and "<" not in text
    assert "Build APIs & pipelines" in text
    assert text.splitlines()[-2:] == ["Go", "SQL"]


def test_whitespace_collapses_but_paragraphs_survive() -> None:
    assert clean_text("a \t b\r\n\r\n\r\n\r\nc\u200b d") == "a b\n\nc d"
    assert clean_text("  Senior\n  Nurse ", multiline=False) == "Senior Nurse"


def test_escaped_markup_stays_literal_text() -> None:
    # an entity-encoded tag is text the employer wrote, not markup: it is unescaped once, never executed or dropped
    assert clean_text("Use &lt;script&gt; tags wisely") == "Use <script> tags wisely"


@pytest.mark.parametrize("row, reason", [
    ({"id": "1", "title": "", "description": "x" * 100}, "missing title"),
    ({"id": "1", "title": "Nurse", "description": None}, "missing description"),
    ({"id": "1", "title": "Nurse", "description": "<script>steal()</script>"}, "after cleaning"),
    ({"id": "1", "title": "Nurse", "description": "d" * 1_048_576}, "over ingest.max_description_chars"),
    ({"id": "1", "title": "Nurse", "description": "caf\udce9 au lait " * 10}, "not valid UTF-8 (bad byte 0xe9"),
])
def test_bad_rows_give_a_reason(row: dict, reason: str) -> None:
    result = to_listing(row, MAP, max_chars=100_000, min_chars=30)
    assert isinstance(result, str) and reason in result


GOOD = {"id": "1", "title": "Nurse", "description": "Care for patients on the ward every day.", "company": "Acme",
        "location": "Austin, TX", "salary": "$40 an hour", "work_type": "Full-time", "experience_level": "Senior"}
FULL_MAP = {f: f for f in GOOD}


@pytest.mark.parametrize("change, reason", [
    ({"title": "T" * 100_000}, "title is 100,000 chars, over ingest.max_title_chars=300"),
    ({"company": "C" * 301}, "company is 301 chars, over ingest.max_field_chars=300"),
    ({"location": "L" * 5000}, "location is 5,000 chars, over ingest.max_field_chars=300"),
    ({"salary": "$" * 400}, "salary is 400 chars, over ingest.max_field_chars=300"),
    ({"work_type": "W" * 400}, "work_type is 400 chars, over ingest.max_field_chars=300"),
    ({"experience_level": "E" * 400}, "experience_level is 400 chars, over ingest.max_field_chars=300"),
    ({"id": ["x"]}, "id has wrong type list; expected text or a number"),
    ({"id": {"k": 1}}, "id has wrong type dict; expected text or a number"),
    ({"id": True}, "id has wrong type bool"),
    ({"location": ["Austin, TX", "Remote"]}, "location has wrong type list; expected text or a number"),
    ({"title": 911}, "title has wrong type int; expected text"),
    ({"title": ["Nurse"]}, "title has wrong type list; expected text"),
    ({"description": {"text": "Care for patients on the ward every day."}}, "description has wrong type dict; expected text"),
    ({"description": 3.5}, "description has wrong type float; expected text"),
    ({"title": "🚀🔥💼"}, "title has no letters or digits"),
    ({"title": "!!! --- ???"}, "title has no letters or digits"),
    ({"description": "🙂 " * 40}, "description has no letters or digits"),
    ({"description": "*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-*-"}, "description has no letters or digits"),
])
def test_unusable_fields_are_rejected_with_the_field_and_the_bound(change: dict, reason: str) -> None:
    from rag_app.settings import IngestSettings

    cfg = IngestSettings()
    result = to_listing({**GOOD, **change}, FULL_MAP, cfg.max_description_chars, cfg.min_description_chars,
                        max_title_chars=cfg.max_title_chars, max_field_chars=cfg.max_field_chars)
    assert isinstance(result, str) and reason in result, result


def test_fields_within_bounds_and_numbers_where_text_is_expected_still_pass() -> None:
    row = {**GOOD, "id": 12345, "title": "🚀 Rocket Engineer " + "x" * 200, "salary": 85000, "company": "C" * 300}
    listing = to_listing(row, FULL_MAP, 100_000, 30, max_title_chars=300, max_field_chars=300)
    assert not isinstance(listing, str), listing
    assert listing.id == "12345" and listing.salary == "85000" and listing.title.startswith("🚀 Rocket Engineer")


def test_good_row_becomes_a_listing_with_derived_id_and_extra() -> None:
    row = {"title": "  ICU&nbsp;Nurse ", "description": "<p>Night shift ICU nurse for a 24-bed unit in Houston.</p>",
           "company": "Clinic", "skills": "ACLS; BLS", "Industry": "Healthcare"}
    listing = to_listing(row, {"title": "title", "description": "description", "company": "company", "skills": "skills"}, 100_000, 30)
    assert not isinstance(listing, str)
    assert listing.title == "ICU Nurse" and listing.skills == ["ACLS", "BLS"] and listing.extra == {"Industry": "Healthcare"}
    assert listing.id.startswith("job-") and listing.id == to_listing(row, {"title": "title", "description": "description",
                                                                            "company": "company", "skills": "skills"}, 100_000, 30).id
    assert listing.header() == "ICU Nurse | Clinic"


def test_columns_resolve_by_alias_and_explicit_map() -> None:
    cols = ["Job Title", "Company Name", "Job Description", "Location", "Salary"]
    m = resolve_columns(cols, {})
    assert m == {"title": "Job Title", "company": "Company Name", "description": "Job Description", "location": "Location", "salary": "Salary"}
    assert resolve_columns(["name", "blurb"], {"title": "name", "description": "blurb"})["description"] == "blurb"


def test_wrong_columns_say_what_to_map() -> None:
    with pytest.raises(ValueError, match=r"no column for description \(columns: name, blurb\); map it with --map description=COLUMN"):
        resolve_columns(["name", "blurb"], {"title": "name"})
    with pytest.raises(ValueError, match="mapped column"):
        resolve_columns(["name"], {"title": "nope"})
    with pytest.raises(ValueError, match="unknown listing field"):
        resolve_columns(["name"], {"colour": "name"})


def test_content_hash_tracks_indexed_fields_only() -> None:
    row = {"id": "1", "title": "Nurse", "description": "Care for patients on the ward every day.", "company": "C"}
    a = to_listing(row, MAP, 100_000, 30)
    b = to_listing({**row, "description": row["description"] + " Nights."}, MAP, 100_000, 30)
    assert a.content_hash() != b.content_hash()
    assert a.content_hash() == a.model_copy(update={"url": "https://x"}).content_hash()
    assert a.repost_key() == to_listing({**row, "id": "2", "description": row["description"].upper() + "!"}, MAP, 100_000, 30).repost_key()
