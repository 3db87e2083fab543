"""Constraints understood from real-world phrasings, negatives included ("not remote", "$20 an hour" vs "$20k", "401k")."""

from __future__ import annotations

import pytest

from rag_app.query import understand

# question -> expected (states, workplace, employment, min_pay, level); None = nothing understood for that key
CASES = [
    ("remote data analyst jobs that pay over 80k", (), ["Remote"], None, 80_000, None),
    ("remote junior data scientist job, at least $65k", (), ["Remote"], None, 65_000, "Entry level"),
    ("sushi chef job in the Richmond VA area, $17+ an hour", ("VA",), [], None, 17 * 2080, None),
    ("life insurance specialist supporting wealth advisors, Charlotte NC, $120k minimum", ("NC",), [], None, 120_000, None),
    ("actuarial analyst at a pet insurance company, remote only", (), ["Remote"], None, None, None),
    ("senior power system planning engineer, Albany NY area, $120k+", ("NY",), [], None, 120_000, "Senior"),
    ("executive assistant job in San Francisco, hybrid, at least $35/hr", ("CA",), ["Hybrid"], None, 35 * 2080, None),
    ("entry-level CPU design verification engineer, Portland OR, $90k+", ("OR",), [], None, 90_000, "Entry level"),
    ("part-time hotel front desk clerk on the Oregon coast", ("OR",), [], "Part-time", None, None),
    ("state DOT geotechnical engineer job in South Dakota, full-time", ("SD",), [], "Full-time", None, None),
    ("motorsports vehicle engineer job doing CAD and parts documentation, Charlotte NC area only", ("NC",), [], None, None, None),
    ("regional chief engineer overseeing a portfolio of office buildings, Boston, full-time", ("MA",), [], "Full-time", None, None),
    ("sous chef ski resort colorado", ("CO",), [], None, None, None),
    ("hotel room cleaner housekeeping job cleveland ohio", ("OH",), [], None, None, None),
    ("water wastewater utility project engineer raleigh nc", ("NC",), [], None, None, None),
    ("digital archivist state government harrisburg pa", ("PA",), [], None, None, None),
    ("venture debt banker credit underwriting tech startups austin", ("TX",), [], None, None, None),
    ("I want a lead role in Houston", ("TX",), [], None, None, "Lead"),
    ("civil engineer looking for a public works job near Tacoma, Washington", ("WA",), [], None, None, None),
    ("business analyst job with a defense contractor in Washington, DC", ("DC",), [], None, None, None),
    ("construction inspector looking for work in the DC metro area", ("DC", "MD", "VA"), [], None, None, None),
    ("CIB relationship support associate, client portfolio servicing, DFW", ("TX",), [], None, None, None),
    ("BSEE w/ PE, 5+ yrs HV line design, NOLA", ("LA",), [], None, None, None),
    ("EIT/PE structural eng - failure investigations of existing buildings and repair design, GA", ("GA",), [], None, None, None),
    ("biomechanics research engineer university lab bay area", ("CA",), [], None, None, None),
    ("entry level civil engineer roadway design orange county hybrid", ("CA",), ["Hybrid"], None, None, "Entry level"),
    ("mobile games data analyst SQL Hive Presto Tableau", (), [], None, None, None),  # not Mobile, Alabama
    ("enterprise architect with 10 years experience", (), [], None, None, None),  # not a city, not pay
    ("nurse with 5+ years experience and a 401k match", (), [], None, None, None),  # not pay
    ("data engineer, not remote, in-office in Denver", ("CO",), ["Hybrid", "On-site"], None, None, None),
    ("non-remote accountant role", (), ["Hybrid", "On-site"], None, None, None),
    ("work from home customer service rep", (), ["Remote"], None, None, None),
    ("remote or hybrid UX designer", (), ["Remote", "Hybrid"], None, None, None),
    ("remote sensing GIS analyst", (), [], None, None, None),  # a field, not a workplace
    ("warehouse associate $20 an hour", (), [], None, 20 * 2080, None),
    ("warehouse manager $20k bonus", (), [], None, 20_000, None),
    ("line cook making $18/hr or more", (), [], None, 18 * 2080, None),
    ("software engineer six figures", (), [], None, 100_000, None),
    ("office manager up to $60k", (), [], None, None, None),  # a ceiling, not a floor
    ("contract data scientist in Mountain View", ("CA",), [], "Contract", None, None),
    ("government contracts specialist", (), [], None, None, None),  # a role, not an employment type
    ("summer data analyst internship using Tableau, Irvine CA", ("CA",), [], "Internship", None, None),
    ("senior living caregiver", (), [], None, None, None),  # not seniority
    ("director of data science at an insurance company", (), [], None, None, "Director"),
    ("VP of Finance role in South Jersey", ("NJ",), [], None, None, "Executive"),
    ("I'm a mid-career data scientist looking for ML work", (), [], None, None, "Mid level"),
    ("new-grad semiconductor test eng rotational program, DFW", ("TX",), [], None, None, "Entry level"),
    ("per diem ICU nurse", (), [], "Per diem", None, None),
    ("temporary ecommerce product data coordinator los angeles", ("CA",), [], "Temporary", None, None),
    # the follow-up phrasings the chat used to infer with a narrower parser
    ("which of those are remote?", (), ["Remote"], None, None, None),
    ("part-time sushi chef, $17+ an hour", (), [], "Part-time", 17 * 2080, None),
    ("hybrid or remote roles over $120k", (), ["Remote", "Hybrid"], None, 120_000, None),
    ("nurse jobs in houston", ("TX",), [], None, None, None),
]


@pytest.mark.parametrize("question, states, workplace, employment, min_pay, level", CASES, ids=[c[0][:40] for c in CASES])
def test_constraints_understood(question: str, states: tuple, workplace: list, employment: str | None, min_pay: float | None,
                                level: str | None) -> None:
    u = understand(question)
    assert (u.states, u.workplace, u.employment, u.level) == (states, workplace, employment, level)
    assert u.min_pay == pytest.approx(min_pay) if min_pay else u.min_pay is None


def test_each_constraint_keeps_its_words_and_a_label() -> None:
    u = understand("remote data analyst jobs that pay over 80k in Austin, TX")
    by_key = {c.key: c for c in u.constraints}
    assert by_key["workplace"].phrase == "remote" and by_key["workplace"].label == "remote"
    assert "80k" in by_key["min_pay"].phrase and by_key["min_pay"].label == "pays ≥ $80,000 a year"
    assert "Austin" in by_key["location"].phrase and "Texas" in by_key["location"].label
    assert [c.key for c in u.constraints] == ["workplace", "min_pay", "location"]  # in the order stated


def test_filters_drop_what_the_user_removed_and_unmet_names_the_misses() -> None:
    u = understand("remote data analyst over $80k")
    assert u.filters().workplace == ["Remote"] and u.filters().min_pay == 80_000 and u.filters().lenient
    assert u.filters(ignore={"workplace"}).workplace == [] and u.filters(ignore={"workplace"}).min_pay == 80_000
    hybrid_cheap = {"workplace": "Hybrid", "pay_mid": 60_000.0, "currency": "USD"}
    assert u.unmet(hybrid_cheap) == ["remote", "pays ≥ $80,000 a year"]
    assert u.unmet({"workplace": "Remote", "pay_mid": 95_000.0, "currency": "USD"}) == []


def test_lenient_filters_read_postings_as_a_seeker_does() -> None:
    u = understand("senior data scientist in Austin, TX, full-time")
    f = u.filters()
    assert f.matches({"location": "Remote", "workplace": "Remote", "level": "Senior", "employment": "Full-time"})  # remote meets a place
    assert f.matches({"location": "Austin, TX", "workplace": "On-site", "employment": ""})  # unstated type and level pass
    assert f.matches({"location": "Round Rock, TX", "workplace": "On-site", "level": "Lead", "employment": "Full-time"})  # neighbour level
    assert not f.matches({"location": "Austin, TX", "workplace": "On-site", "level": "Entry level", "employment": "Full-time"})
    assert not f.matches({"location": "Denver, CO", "workplace": "On-site", "level": "Senior", "employment": "Full-time"})
    assert not f.matches({"location": "Austin, TX", "workplace": "On-site", "level": "Senior", "employment": "Part-time"})


def test_nothing_stated_means_no_filter() -> None:
    u = understand("python developer machine learning")
    assert u.constraints == [] and u.filters().is_empty()
