"""Keyphrase miners for template queries (`--keyphrases yake|keybert`) and the `specifics` style."""

from __future__ import annotations

import re

import pytest

from finetune.keyphrases import extract, runs, window
from finetune.pairs import TemplateGenerator
from finetune.templates import core_role, employer_type
from rag_app.errors import ConfigError
from tests.finetune.test_pairs_split import sample  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def yake_gen(sample):  # noqa: F811
    return TemplateGenerator(sample, 3, seed=5, keyphrases="yake", specifics_weight=1.0)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def check_phrases(sample, terms: dict[str, list[str]]) -> None:  # noqa: F811
    """Every phrase is in its listing's window, names neither its company nor its place, and says more than its title."""
    for x in sample:
        text = " ".join(re.findall(r"[a-z0-9+#]+", window(x).lower()))
        for phrase in terms[x.id]:
            assert phrase in text, (x.id, phrase)
            assert not words(phrase) & words(f"{x.company or ''} {x.location or ''}"), (x.id, phrase)
            assert not words(phrase) <= words(x.title), (x.id, phrase)


def test_yake_keyphrases_come_from_the_listing_and_are_distinctive(sample, yake_gen) -> None:  # noqa: F811
    check_phrases(sample, yake_gen.terms)
    with_terms = [x for x in sample if yake_gen.terms[x.id]]
    assert len(with_terms) > len(sample) / 2 and any(" " in p for ps in yake_gen.terms.values() for p in ps)  # phrases, not only words
    counts: dict[str, int] = {}
    for ps in yake_gen.terms.values():
        for p in set(ps):
            counts[p] = counts.get(p, 0) + 1
    assert max(counts.values()) <= 0.05 * len(sample)  # in at most 5% of the listings


def test_yake_queries_carry_the_listings_keyphrases_and_never_the_title(sample, yake_gen) -> None:  # noqa: F811
    specifics = carried = 0
    for x in sample:
        queries = yake_gen(x)
        assert 1 <= len(queries) <= 3
        terms = yake_gen.terms[x.id]
        for q, style in queries:
            assert q.lower() != x.title.lower()
            if core_role(x.title).lower() != x.title.lower():
                assert x.title.lower() not in q.lower()
            if style == "specifics":
                specifics += 1
                assert sum(t in q.lower() for t in terms) >= 2, (q, terms)
        carried += any(t in q.lower() for q, _ in queries for t in terms)
    assert specifics > len(sample) / 3 and carried > len(sample) / 2


def test_the_specifics_style_is_off_by_default_and_the_default_miner_is_tfidf(sample) -> None:  # noqa: F811
    gen = TemplateGenerator(sample, 3, seed=5)
    assert "specifics" not in gen.styles and all(" " not in t for ts in gen.terms.values() for t in ts)
    assert {s for x in sample for _, s in gen(x)} <= {"keyword", "natural", "paraphrase", "skill", "constraint"}
    with pytest.raises(ConfigError, match="valid: tfidf, yake, keybert"):
        extract("rake", sample)


def test_employer_type_and_candidate_runs() -> None:
    assert employer_type("Fremont Bank", "") == "bank" and employer_type("County of Santa Clara", "") == "government agency"
    assert employer_type("Acme", "We are a Series B start-up building payroll tools.") == "startup"
    assert employer_type("UC Health Medical Center", "") == "hospital" and employer_type("Acme", "We build tools.") is None
    assert runs("Experience with Power BI, Tableau and A/B testing; AWS Glue - Medi-Cal claims.") == [
        ["power", "bi"], ["tableau"], ["testing"], ["aws", "glue"], ["medi", "cal", "claims"]]


@pytest.mark.slow
def test_keybert_keyphrases_come_from_the_listing_and_feed_queries(sample) -> None:  # noqa: F811
    gen = TemplateGenerator(sample, 3, seed=5, keyphrases="keybert", specifics_weight=1.0)
    check_phrases(sample, gen.terms)
    assert sum(bool(t) for t in gen.terms.values()) > len(sample) / 2
    assert any(style == "specifics" for x in sample for _, style in gen(x))
