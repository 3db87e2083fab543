from __future__ import annotations

import pytest

from rag_app.filters import ListingFilters, derived_metadata, level_of, parse_pay


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


@pytest.mark.parametrize("wanted, location, expected", [
    ("PA", "Pittsburgh, PA 15201", True),
    ("PA", "Saint Paul, MN", False),  # a substring test matched "Saint PAul"
    ("pa", "12 Elm St, Pittsburgh, PA 15201", True),
    ("Pennsylvania", "Pittsburgh, PA", True),
    ("pennsylvania", "Erie, Pennsylvania", True),
    ("Pennsylvania", "77 Pennsylvania Ave, Baltimore, MD 21201", False),  # a street is not a state
    ("IN", "Indianapolis, IN 46204", True),  # IN as a filter is Indiana ...
    ("IN", "Remote in Austin, TX", False),  # ... never the word "in"
    ("in", "Hybrid remote in Denver, CO", False),
    ("Indiana", "Fort Wayne, IN", True),
    ("OR", "Portland, OR", True),
    ("OR", "Portland, ME", False),
    ("ME", "Portland, ME 04101", True),
    ("ME", "Remote, contact me", False),
    ("Portland", "Portland, OR", True),
    ("Portland, ME", "Portland, OR", False),
    ("WA", "Washington, DC", False),
    ("DC", "Washington, DC 20001", True),
    ("Washington", "Seattle, WA", True),
    ("Washington", "Washington, DC", True),  # the state name is also the capital's name
    ("Washington", "31 Washington Blvd, Newark, NJ 07102", False),
    ("District of Columbia", "Washington DC", True),
    ("New York", "New York, NY", True),
    ("New York", "Buffalo, NY 14202", True),
    ("NY", "New York State", True),
    ("New York, NY", "5 Main St, New York, NY 10001", True),
    ("New York, NY", "York, PA", False),
    ("New York, NY", "New York, New York", True),
    ("Austin", "Austin, TX 78701", True),
    ("Austin", "12 Oak St, Austin, TX 78702", True),
    ("austin, tx", "Austin, Texas", True),
    ("Austin TX", "Remote in Austin, TX", True),
    ("portland me", "Portland, ME", True),
    ("Austin", "Dallas, TX", False),
    ("Paul", "Saint Paula", False),
    ("Saint Paul", "Saint Paul, MN", True),
    ("Madison", "9 Madison Ave, Albany, NY 12207", False),
    ("San Francisco", "San Francisco Bay Area", True),
    ("Bay Area", "San Francisco Bay Area", True),
    ("CA", "San Francisco Bay Area", False),  # no state given: a state filter cannot know
    ("CA", "Eureka, CA, US", True),
    ("CA", "Fresno, US-CA", True),
    ("San Francisco", "8 Pine St, San Francisco, CA 94102, CA 94102, US", True),
    ("Fresno, CA", "Fresno, CA (main office)", True),
    ("California", "Fresno, California, United States", True),
    ("CA", "Fresno, California 93701", True),
    ("CA", "Greater Fresno, California Area", True),
    ("TX", "Texas", True),
    ("Texas", "TX", True),
    ("Remote", "Remote", True),  # "Remote" keeps substring matching
    ("remote", "Hybrid remote in Denver, CO", True),
    ("Remote", "Austin, TX", False),
    ("TX", "Remote", False),
    ("TX", None, False),
    ("London", "London, UK", True),
    ("", "anywhere", True),
])
def test_location_matches_states_and_cities_as_words(wanted: str, location: str | None, expected: bool) -> None:
    from rag_app.places import location_matches

    assert location_matches(wanted, location) is expected
    assert ListingFilters(location=wanted or None).matches({"location": location}) is expected


def test_one_state_table_serves_filters_and_query_templates() -> None:
    import random

    from finetune.templates import Facts, place
    from rag_app.places import state_names

    names = state_names()
    assert len(names) >= 51 and names["PA"] == "Pennsylvania" and names["IN"] == "Indiana" and names["DC"] == "District of Columbia"
    seen = {place(Facts(role="Nurse", city="Pittsburgh", state="PA"), random.Random(i)) for i in range(40)}
    assert "Pennsylvania" in seen
