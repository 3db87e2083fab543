from __future__ import annotations

import pytest

from rag_app.filters import ListingFilters, derived_metadata, infer_filters, level_of, parse_pay


@pytest.mark.parametrize("text, lo, hi, cur", [
    ("$24 - $30 an hour", 24 * 2080, 30 * 2080, "USD"),
    ("$80,000 - $130,000 a year", 80_000, 130_000, "USD"),
    ("From $100,000 a year", 100_000, 100_000, "USD"),
    ("£45,000 - £55,000 a year", 45_000, 55_000, "GBP"),
    ("S$60.80 - S$72.99 an hour", 60.80 * 2080, 72.99 * 2080, "SGD"),
    ("$1,600 a week", 1600 * 52, 1600 * 52, "USD"),
    ("$70K-$90K", 70_000, 90_000, "USD"),
    ("$127,500 - $170,000 ", 127_500, 170_000, "USD"),  # period lost by a scraper: large numbers are yearly
])
def test_pay_is_parsed_and_annualised(text: str, lo: float, hi: float, cur: str) -> None:
    got = parse_pay(text)
    assert got["pay_min"] == pytest.approx(lo) and got["pay_max"] == pytest.approx(hi) and got["currency"] == cur
    assert got["pay_mid"] == pytest.approx((lo + hi) / 2)


def test_unparseable_pay_is_empty() -> None:
    assert parse_pay("Competitive") == {} and parse_pay(None) == {}


def test_derived_metadata_and_levels() -> None:
    meta = derived_metadata("Part-time, Full-time; Remote", "Austin, TX", "$20 an hour", None, "Senior Nurse")
    assert meta["workplace"] == "Remote" and meta["employment"] == "Full-time, Part-time" and meta["level"] == "Senior"
    assert derived_metadata(None, "Hybrid remote in Denver, CO", None, None, "Clerk")["workplace"] == "Hybrid"
    assert level_of(None, "Data Entry Clerk") is None and level_of("Entry level", "Clerk") == "Entry level"


def test_filters_match_and_push_down() -> None:
    f = ListingFilters(location="tx", workplace=["Remote"], min_pay=40_000, employment="part-time")
    meta = {"location": "Austin, TX", "workplace": "Remote", "employment": "Part-time", "pay_mid": 41_600.0, "currency": "USD"}
    assert f.matches(meta)
    assert not f.matches({**meta, "currency": "GBP"}) and not f.matches({**meta, "location": "Denver, CO"})
    assert not f.matches({k: v for k, v in meta.items() if k != "pay_mid"})  # no parseable pay fails a pay floor
    assert f.chroma_where() == {"$and": [{"workplace": {"$in": ["Remote"]}}, {"pay_mid": {"$gte": 40000.0}}, {"currency": {"$eq": "USD"}}]}
    assert ListingFilters().chroma_where() is None and ListingFilters().is_empty()


@pytest.mark.parametrize("question, expected", [
    ("which of those are remote?", {"workplace": ["Remote"]}),
    ("part-time sushi chef, $17+ an hour", {"employment": "Part-time", "min_pay": 17 * 2080}),
    ("hybrid or remote roles over $120k", {"workplace": ["Remote", "Hybrid"], "min_pay": 120_000}),
    ("nurse jobs in houston", {}),
])
def test_constraints_are_inferred_from_questions(question: str, expected: dict) -> None:
    assert infer_filters(question).model_dump(exclude_defaults=True) == expected
