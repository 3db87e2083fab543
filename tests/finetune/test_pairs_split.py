"""Pair generation and leakage-safe splits (no model needed)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from finetune.keyphrases import document_frequency_window
from finetune.pairs import LLMGenerator, TemplateGenerator, build_dataset, load_training_data
from finetune.split import company_key, leakage_groups, split_groups
from finetune.templates import abbreviate, core_role
from rag_app.filters import parse_pay
from rag_app.records import JobListing
from tests.helpers.openai_server import OpenAIStub


@pytest.fixture(scope="module")
def sample() -> list[JobListing]:
    from ingest.sources import SAMPLE_PATH

    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()]
    return [JobListing(**{k: v for k, v in r.items() if k in JobListing.model_fields}) for r in rows if "repost" not in r["id"]]


def test_template_queries_are_deterministic_varied_and_never_the_title(sample) -> None:
    a, b = TemplateGenerator(sample, 3, seed=7), TemplateGenerator(sample, 3, seed=7)
    out = {x.id: a(x) for x in sample}
    assert out == {x.id: b(x) for x in sample}
    assert out != {x.id: TemplateGenerator(sample, 3, seed=8)(x) for x in sample}
    styles = Counter(style for pairs in out.values() for _, style in pairs)
    assert set(styles) == {"keyword", "natural", "paraphrase", "skill", "constraint"} and min(styles.values()) > 20
    for x in sample:
        assert 1 <= len(out[x.id]) <= 3
        assert all(q.lower() != x.title.lower() for q, _ in out[x.id])


def test_constraint_queries_hold_for_their_listing(sample) -> None:
    gen = TemplateGenerator(sample, 5, seed=1)
    checked = 0
    for x in sample:
        for query, style in gen(x):
            if style != "constraint":
                continue
            checked += 1
            if " remote" in f" {query}":
                assert "Remote" in (x.work_type or "")
            if "part-time" in query:
                assert "Part-time" in (x.work_type or "")
            if "an hour" in query:
                floor = float(query.split("$")[1].split("+")[0])
                assert parse_pay(x.salary)["pay_min"] / 2080 >= floor
    assert checked > 30


def test_role_cleanup_and_abbreviation() -> None:
    import random

    assert core_role("Senior ICU Registered Nurse - Nights (Float Pool)") == "ICU Registered Nurse"
    assert core_role("Managing Librarian, Sci-Tech Library") == "Managing Librarian"
    outcomes = {abbreviate("Registered Nurse", random.Random(seed)) for seed in range(50)}
    assert outcomes == {"RN", "registered nursing"}  # the abbreviation, or the field's word: never the title as written


def _listing(i: int, company: str | None, desc: str | None = None, title: str = "Nurse") -> JobListing:
    return JobListing(id=f"l{i}", title=title, company=company, description=desc or f"Unique description number {i} " * 5)


def test_groups_join_company_reposts_and_templated_descriptions() -> None:
    templated = "Staffing agency template text for a travel nurse assignment. " * 8
    items = [_listing(1, "Acme Inc."), _listing(2, "ACME"), _listing(3, "Beta"), _listing(4, "Gamma", templated), _listing(5, "Delta", templated),
             _listing(6, None)]
    groups = leakage_groups(items)
    assert groups["l1"] == groups["l2"] and groups["l4"] == groups["l5"]
    assert len({groups["l1"], groups["l3"], groups["l4"], groups["l6"]}) == 4
    assert company_key("The Acme Company, LLC") == "acme"


def test_dataset_splits_never_share_a_listing_or_company(tmp_path, sample) -> None:
    gen = TemplateGenerator(sample, 2, seed=3)
    counts = build_dataset(sample, {x.id: gen(x) for x in sample}, tmp_path, {"generator": "template"}, seed=3)
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0
    data = load_training_data(tmp_path)
    by_id = {x.id: x for x in sample}
    owners = {}
    for name in ("train", "val", "test"):
        split = getattr(data, name)
        for docs in split.relevant_docs.values():
            assert all(d in split.corpus for d in docs)
        for lid in split.corpus:
            assert owners.setdefault(lid, name) == name  # a listing lives in one split
    companies: dict[str, set[str]] = {}
    for lid, split in owners.items():
        companies.setdefault(company_key(by_id[lid].company), set()).add(split)
    assert all(len(s) == 1 for s in companies.values())  # a company lives in one split
    assert set(data.groups) == set(by_id)


@pytest.mark.parametrize("n", [1, 5, 40])
def test_small_corpora_get_queries_and_a_dataset(tmp_path, sample, n) -> None:
    listings = sample[:n]
    gen = TemplateGenerator(listings, 2, seed=3)  # 5% of under 60 listings is under scikit-learn's min_df of 3
    queries = {x.id: gen(x) for x in listings}
    assert all(1 <= len(q) <= 2 for q in queries.values())
    counts = build_dataset(listings, queries, tmp_path, {"generator": "template"}, seed=3)
    assert sum(counts.values()) == sum(len(q) for q in queries.values())
    data = load_training_data(tmp_path)
    assert sum(len(getattr(data, s).corpus) for s in ("train", "val", "test")) == n


def test_the_term_window_adapts_below_60_listings_only() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    assert all(document_frequency_window(n) == (3, 0.05) for n in (60, 61, 1000, 5708))  # large corpora: unchanged
    for n in range(1, 61):
        min_df, max_df = document_frequency_window(n)
        docs = [f"one{i} two{i // 2} three{i // 3}" for i in range(n)]  # terms in 1, 2 and 3 documents
        TfidfVectorizer(min_df=min_df, max_df=max_df).fit(docs)  # never "max_df corresponds to < documents than min_df"


def test_split_fractions_are_respected() -> None:
    groups = {f"l{i}": f"g{i // 2}" for i in range(1000)}
    assignment = split_groups(groups, (0.8, 0.1, 0.1), seed=0)
    sizes = Counter(assignment[g] for g in groups.values())
    assert abs(sizes["val"] - 100) <= 2 and abs(sizes["test"] - 100) <= 2


def test_llm_generator_resumes_after_a_crash(tmp_path, sample) -> None:
    from rag_app.llms import build_llm
    from rag_app.settings import LLMSettings

    listings = sample[:6]

    def reply(messages: list[dict]) -> str:
        posting = messages[-1]["content"].split("Posting:")[-1].strip().splitlines()[0]
        return f"1. {posting.split(' | ')[0].lower()} jobs near me\n2. entry level {posting.split(' | ')[0].lower()}\n- remote friendly role"

    checkpoint = tmp_path / "ckpt.jsonl"
    with OpenAIStub(reply, fail_first=1) as stub:
        llm = build_llm(LLMSettings(mode="openai", api_base=stub.base_url, model="stub", max_retries=0), tmp_path)
        calls = {"n": 0}

        def dying_complete(prompt: str) -> str:
            calls["n"] += 1
            if calls["n"] > 4:
                raise KeyboardInterrupt("simulated crash")  # not an Exception: kills the run like a signal would
            return llm.complete(prompt).text

        with pytest.raises(KeyboardInterrupt):
            LLMGenerator(dying_complete, checkpoint, n=3, concurrency=1, retries=2).run(listings, progress=False)
        done_before = [json.loads(line)["id"] for line in checkpoint.read_text().splitlines()]
        assert 0 < len(done_before) < len(listings)
        with checkpoint.open("a") as fh:
            fh.write('{"id": "torn')  # a line cut by the crash
        requests_before = len(stub.requests)
        resumed = LLMGenerator(lambda p: llm.complete(p).text, checkpoint, n=3, concurrency=2, retries=2).run(listings, progress=False)
        assert set(resumed) == {x.id for x in listings}
        assert len(stub.requests) - requests_before == len(listings) - len(done_before)  # finished listings were skipped
        assert all(len(qs) == 3 and all("1." not in q and not q.startswith("-") for q in qs) for qs in resumed.values())
