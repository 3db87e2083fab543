"""The groundedness check on hand-made sentences: facts a listing states pass, invented ones are caught."""

from __future__ import annotations

import pytest

from rag_app.grounding import check_text, names, unsupported

LISTINGS = {
    "da-1": "Data Analyst | Acme Retail | Phoenix, AZ | $85,000 - $95,000 a year | Full-time; Hybrid\n"
            "Analyze sales data with SQL and Tableau for our 40 stores. Report weekly to the VP of Merchandising.",
    "cna-1": "Certified Nursing Assistant | Sunrise Care | Reno, NV | $17 an hour | Part-time\n"
             "Provide patient care on the night shift, three 12-hour shifts per week.",
}


@pytest.mark.parametrize("sentence, cites, missing", [
    ("The Acme Retail role pays $95k.", ["da-1"], []),  # $95k = 95,000
    ("It pays between $85,000 and $95,000 a year.", ["da-1"], []),
    ("You would use SQL and Tableau in Phoenix.", ["da-1"], []),
    ("The team covers 40 stores and reports weekly.", ["da-1"], []),
    ("Sunrise Care pays $17 an hour for night shifts.", ["cna-1"], []),
    ("It offers three 12-hour shifts per week.", ["cna-1"], []),
    ("It pays a salary of $93,760 per year.", ["da-1"], ["$93,760 per year"]),  # invented amount
    ("That is $34,000 more than a full-time data engineer earns.", ["da-1"], ["$34,000"]),
    ("The job requires a 10% increase in hours and a 6% bonus of $7.25.", ["cna-1"], ["10%", "6%", "$7.25"]),
    ("The role is based in Los Angeles.", ["da-1"], ["Los", "Angeles"]),  # a place no listing names
    ("You need 5 years of industry experience.", ["da-1"], ["5 years"]),
    ("The employer is Walmart.", ["da-1"], ["Walmart"]),  # an invented employer
    ("It is Sunrise Care that pays $17 an hour.", ["da-1"], ["$17", "Sunrise", "Care"]),  # true of another listing, not the cited one
])
def test_facts_must_appear_in_the_cited_listings(sentence: str, cites: list[str], missing: list[str]) -> None:
    assert unsupported(sentence, [LISTINGS[c] for c in cites]) == missing


def test_check_keeps_supported_sentences_and_counts_the_rest() -> None:
    text = ("These roles fit a data seeker. The Acme Retail job pays $95k [da-1]. It is in Los Angeles [da-1]. "
            "Sunrise Care offers night shifts [cna-1].")
    checked = check_text(text, LISTINGS, question="data analyst jobs over 80k")
    assert checked.sentences == 4 and [s for s, _ in checked.removed] == ["It is in Los Angeles [da-1]."]
    assert "Los Angeles" not in checked.text and "[da-1]" in checked.text and "[cna-1]" in checked.text


def test_an_uncited_framing_line_may_restate_the_question() -> None:
    assert not check_text("Here are roles paying over $80k.", LISTINGS, question="analyst jobs over 80k").removed
    assert check_text("Here are roles paying over $120k.", LISTINGS, question="analyst jobs over 80k").removed


def test_names_skip_the_first_word_and_everyday_words() -> None:
    assert names("Remote roles at Acme in Phoenix use SQL; I think the Senior one fits.") == ["Acme", "Phoenix", "SQL"]
    assert names("Alex") == ["Alex"] and names("Regards, Alex") == ["Regards", "Alex"]  # a short line is all name


def test_a_name_alone_on_a_line_is_checked_like_any_other() -> None:
    checked = check_text("The Acme role pays $95k [a-1].\nBest regards,\nAlex", {"a-1": "Acme pays $95,000 a year."})
    assert checked.text == "The Acme role pays $95k [a-1].\nBest regards," and [m for _, m in checked.removed] == [["Alex"]]


def test_what_the_check_keeps_passes_it_again_line_for_line() -> None:
    listings = {"a-1": "Acme pays $95,000 a year in Phoenix.", "b-2": "Birch Health hires nurses in Tucson."}
    text = "These roles fit.\n- Acme pays $95k in Phoenix [a-1].\n- Birch Health is in Mesa [b-2].\nGood luck\nSam"
    first = check_text(text, listings, question="jobs in arizona")
    assert first.text == "These roles fit.\n- Acme pays $95k in Phoenix [a-1].\nGood luck"  # list items stay lines
    again = check_text(first.text, listings, question="jobs in arizona")  # compare's independent re-check of what was shown
    assert again.text == first.text and not again.removed and again.sentences == 3
