"""Answer scoring (eval.answers, eval.ragas_scoring) and the compare report's answer columns and charts (eval.report, eval.report_html)."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from eval.answers import JudgeConfig, citation_precision, generate_answers, load_references
from eval.projection import pca_2d, projection
from eval.ragas_scoring import score_answers
from eval.report import write_report
from eval.report_html import delta_histogram_chart
from eval.runs import Run
from rag_app.records import Answer, SourceListing
from tests.eval.judge import FAIL_MARK, reply
from tests.helpers.openai_server import OpenAIStub

CORPUS = {"d1": "ICU Nurse | Mercy | Houston\n\nNight shift ICU nurse caring for critical patients.",
          "d2": "Line Cook | Bistro | Austin\n\nPrepare food on the grill line.",
          "d3": "Data Engineer | Acme | Remote\n\nBuild python data pipelines.",
          "d4": "Pastry Chef | Bakery | Denver\n\nBake bread and pastries."}
RELEVANT = {"q1": ["d1"], "q2": ["d3"], "q3": ["d2", "d4"], "q4": ["d1"]}
QUERIES = {"q1": "night nurse job", "q2": "python data engineering remote", "q3": "cooking jobs", "q4": "icu nursing"}


def source(rank: int, doc: str) -> SourceListing:
    title, _, rest = CORPUS[doc].partition(" | ")
    return SourceListing(rank=rank, id=doc, title=title, score=1.0 / rank, chunk=CORPUS[doc].split("\n\n")[1])


def fake_answer_fn(order: dict[str, list[str]]):
    """`question, label -> Answer`: label 'good' ranks the relevant listing first, 'bad' ranks it last; both cite rank 1."""

    def answer(question: str, label: str) -> Answer:
        qid = next(q for q, t in QUERIES.items() if question.startswith(t))
        docs = order[qid] if label == "good" else list(reversed(order[qid]))
        sources = [source(i, d) for i, d in enumerate(docs, start=1)]
        return Answer(question=question, query=question, text=f"Try [{docs[0]}]: {CORPUS[docs[0]].splitlines()[0]}.", cited_ids=[docs[0]],
                      sources=sources, retriever=label)

    return answer


ORDER = {"q1": ["d1", "d2", "d3"], "q2": ["d3", "d1", "d2"], "q3": ["d2", "d4", "d1"], "q4": ["d1", "d3", "d4"]}


def test_citation_precision_is_undefined_without_citations() -> None:
    assert citation_precision(["d1", "d2", "d1"], {"d1"}) == 0.5
    assert citation_precision([], {"d1"}) is None


def test_judge_less_path_runs_the_non_llm_metrics_and_says_why_not_the_others(embedder) -> None:
    rows = generate_answers(fake_answer_fn(ORDER), ["good", "bad"], QUERIES, context_k=2, progress=False)
    refs = {"q1": "A night shift ICU nurse job at Mercy in Houston."}
    result = score_answers(rows, RELEVANT, refs, embedder=embedder, judge=None, progress=False, embedder_name="minilm")
    assert set(result.ran) == {"citation_precision", "unsupported_rate", "delivered_unsupported", "constraint_satisfaction",
                               "id_context_precision", "id_context_recall", "semantic_similarity"}
    for metric in ("faithfulness", "answer_relevancy", "llm_context_precision", "llm_context_recall"):
        assert "judge" in result.skipped[metric]
    good, bad = result.metric_summary("good"), result.metric_summary("bad")
    assert good["citation_precision"]["mean"] == 1.0 and bad["citation_precision"]["mean"] == 0.0
    # context = top 2: good has the relevant listing in context for every query, q3 has both of its relevant ones
    assert good["id_context_recall"]["mean"] == pytest.approx((1 + 1 + 1 + 1) / 4)
    assert bad["id_context_recall"]["mean"] == pytest.approx((0 + 0 + 0.5 + 0) / 4)
    assert good["id_context_precision"]["mean"] == pytest.approx((0.5 + 0.5 + 1 + 0.5) / 4)
    # a reference for one query only: similarity on that row, the others not applicable (not failed)
    assert good["semantic_similarity"]["n"] == 1 and good["semantic_similarity"]["failed"] == 0 and good["semantic_similarity"]["n_a"] == 3
    assert 0.3 < good["semantic_similarity"]["mean"] <= 1.0
    assert result.notes() == []


def test_a_generation_error_marks_the_row_and_stays_out_of_the_means(embedder) -> None:
    inner = fake_answer_fn(ORDER)

    def flaky(question: str, label: str) -> Answer:
        if question == QUERIES["q2"]:
            raise TimeoutError("LLM timed out")
        return inner(question, label)

    rows = generate_answers(flaky, ["good"], QUERIES, context_k=2, progress=False)
    result = score_answers(rows, RELEVANT, {}, embedder=embedder, progress=False)
    assert rows["good"]["q2"].error.startswith("TimeoutError") and rows["good"]["q2"].scores["citation_precision"] is None
    s = result.metric_summary("good")
    assert s["citation_precision"]["n"] == 3 and s["citation_precision"]["failed"] == 1
    assert any("generation failed on 1 of 4" in n for n in result.notes())


def test_a_metric_ragas_leaves_undefined_is_not_applicable_not_failed(embedder) -> None:
    inner = fake_answer_fn(ORDER)

    def no_context_for_q1(question: str, label: str) -> Answer:
        answer = inner(question, label)
        return answer.model_copy(update={"sources": []}) if question == QUERIES["q1"] else answer

    rows = generate_answers(no_context_for_q1, ["good"], QUERIES, context_k=2, progress=False)
    result = score_answers(rows, RELEVANT, {}, embedder=embedder, progress=False)
    q1 = rows["good"]["q1"]
    assert q1.scores["id_context_precision"] is None and "undefined" in q1.not_applicable["id_context_precision"] and not q1.failures
    assert q1.scores["id_context_recall"] == 0.0  # nothing retrieved: recall is defined, and zero
    assert result.metric_summary("good")["id_context_precision"] == {"mean": pytest.approx((0.5 + 1 + 0.5) / 3), "n": 3, "failed": 0, "n_a": 1}


def test_judge_served_on_localhost_scores_every_llm_metric(embedder) -> None:
    rows = generate_answers(fake_answer_fn(ORDER), ["good"], dict(list(QUERIES.items())[:2]), context_k=2, progress=False)
    refs = {"q1": "A night shift ICU nurse job at Mercy.", "q2": "A remote python data engineer job at Acme."}
    with OpenAIStub(reply) as stub:
        result = score_answers(rows, RELEVANT, refs, embedder=embedder, judge=JudgeConfig(api_base=stub.base_url, model="stub-judge", max_retries=0),
                               progress=False)
        assert stub.requests and all(r["path"] == "/v1/chat/completions" and r["body"]["model"] == "stub-judge" for r in stub.requests)
    assert result.skipped == {}
    s = result.metric_summary("good")
    for metric in ("faithfulness", "llm_context_precision", "llm_context_recall"):
        assert s[metric]["n"] == 2 and s[metric]["mean"] == pytest.approx(1.0, abs=1e-6), metric
    assert s["answer_relevancy"]["n"] == 2 and 0 < s["answer_relevancy"]["mean"] <= 1
    assert "127.0.0.1" in result.judge and "stub-judge" in result.ran["faithfulness"]


def test_a_judge_failing_half_the_rows_is_marked_and_the_mean_uses_the_scored_rows(embedder) -> None:
    queries = {q: (t + f" {FAIL_MARK}" if q in ("q2", "q4") else t) for q, t in QUERIES.items()}
    inner = fake_answer_fn(ORDER)

    def answer(question: str, label: str) -> Answer:
        return inner(question.replace(f" {FAIL_MARK}", ""), label).model_copy(update={"question": question})

    rows = generate_answers(answer, ["good"], queries, context_k=2, progress=False)
    with OpenAIStub(reply) as stub:
        result = score_answers(rows, RELEVANT, {}, embedder=embedder, judge=JudgeConfig(api_base=stub.base_url, model="j", max_retries=0),
                               progress=False)
    s = result.metric_summary("good")
    for metric in ("faithfulness", "llm_context_precision"):
        assert s[metric] == {"mean": pytest.approx(1.0, abs=1e-6), "n": 2, "failed": 2, "n_a": 0}, metric
        for q in ("q2", "q4"):
            assert rows["good"][q].scores[metric] is None and rows["good"][q].failures[metric].startswith("judge failed")
        for q in ("q1", "q3"):
            assert rows["good"][q].scores[metric] == pytest.approx(1.0, abs=1e-6) and metric not in rows["good"][q].failures
    assert "llm_context_recall" in result.skipped and "reference" in result.skipped["llm_context_recall"]
    notes = result.notes()
    assert any("faithfulness failed on 2 of 4 rows" in n and "mean over the 2 scored rows" in n for n in notes)


def test_references_from_queries_jsonl_or_references_jsonl(tmp_path: Path) -> None:
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "a", "reference": "ref one"}\n{"_id": "q2", "text": "b"}\n')
    (tmp_path / "references.jsonl").write_text('{"query-id": "q2", "answer": "ref two"}\n')
    assert load_references(tmp_path) == {"q1": "ref one", "q2": "ref two"}
    assert load_references(None) == {}


def test_pca_and_projection_are_deterministic(embedder) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 5)) * np.array([5, 2, 0.1, 0.1, 0.1])
    xy, share = pca_2d(x)
    assert xy.shape == (30, 2) and share[0] > share[1] > 0 and sum(share) > 0.95
    assert np.allclose(pca_2d(x)[0], xy)
    proj = projection("base", "minilm", embedder, QUERIES, CORPUS, {q: ORDER[q] for q in QUERIES}, RELEVANT, top=2)
    kinds = [p["kind"] for p in proj["points"]]
    assert kinds.count("query") == 4 and "relevant" in kinds and all(math.isfinite(p["x"]) for p in proj["points"])


def test_delta_histogram_bins_moved_queries_over_minus_one_to_one_and_draws_ties_apart() -> None:
    spec = delta_histogram_chart("a", "b", [-1.0, -0.95, 0.0, 0.05, 0.99, 1.0, 1e-12]).to_dict()
    bars, ties, _ = spec["layer"]
    assert bars["encoding"]["x"]["bin"] == {"extent": [-1, 1], "step": 0.1} and bars["encoding"]["y"]["aggregate"] == "count"
    moved = spec["datasets"][bars["data"]["name"]]
    assert sorted(r["delta"] for r in moved) == [-1.0, -0.95, 0.05, 0.99, 1.0]  # the ties (0, 1e-12) are not binned with the moves
    assert spec["datasets"][ties["data"]["name"]] == [{"delta": 0.0, "queries": 2, "outcome": "tied"}]
    assert spec["title"] == "b − a: 3 better, 2 tied, 2 worse"


def _run(label: str, values: dict[str, float]) -> Run:
    run = Run(label=label, spec="bm25")
    for q, v in values.items():
        run.per_query[q] = {"first_rel_rank": 1.0, "hit@1": 1.0, "hit@3": 1.0, "hit@10": 1.0, "rr@10": v, "ndcg@10": v,
                            "recall@10": v, "recall@100": v, "map@100": v}
        run.rankings[q] = ["d1", "d2"]
    return run


def test_report_has_answer_columns_histogram_projection_and_escapes_text(embedder, tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>'
    runs = [_run("good", {"q1": 1.0, "q2": 0.5, "q3": 0.2, "q4": 0.9}), _run(evil, {"q1": 0.5, "q2": 0.5, "q3": 0.6, "q4": 0.1})]
    inner = fake_answer_fn(ORDER)
    rows = generate_answers(lambda q, label: inner(q, "good" if label == "good" else "bad"), ["good", evil], QUERIES, context_k=2, progress=False)
    answers = score_answers(rows, RELEVANT, {}, embedder=embedder, progress=False)
    proj = projection("good", "minilm </svg>", embedder, QUERIES, CORPUS, {q: ORDER[q] for q in QUERIES}, RELEVANT)
    queries = {**QUERIES, "q1": evil}
    data = write_report(tmp_path, runs, queries, ["a note & <b>"], {"m": 1}, 500, 500, 0, answers=answers, projections=[proj])
    assert data["retrievers"]["good"]["citation_precision"] == 1.0 and data["retrievers"]["good"]["citation_precision_n"] == 4
    assert set(data["answers"]["metrics_not_run"]) >= {"faithfulness", "semantic_similarity"}
    answer_deltas = [d for d in data["deltas"] if d["metric"] == "citation_precision"]
    assert len(answer_deltas) == 1 and answer_deltas[0]["n"] == 4 and answer_deltas[0]["delta"] == pytest.approx(-1.0)
    json.loads((tmp_path / "summary.json").read_text())  # valid JSON (no NaN)
    rows_csv = list(csv.DictReader((tmp_path / "per_query.csv").open()))
    assert {"good:answer", "good:cited", "good:citation_precision", "good:id_context_recall", "good:answer_failed"} <= set(rows_csv[0])
    page = (tmp_path / "report.html").read_text()
    assert evil not in page and "&lt;script&gt;" in page and "minilm </svg>" not in page
    assert page.count('class="histogram"') == 1 and page.count('class="projection"') == 1 and 'class="whisker"' in page
    assert not re.search(r"<script[^>]*\bsrc=", page) and "<link" not in page and "vegaEmbed" in page  # self-contained: Vega inlined
    embedded = page.split("id='summary'>")[1].split("</script>")[0]
    assert json.loads(embedded)["n_queries"] == 4
    specs = json.loads(page.split("id='charts'>")[1].split("</script>")[0])
    assert list(specs) == ["chart-0", "chart-1", "chart-2"] and all(s["$schema"].startswith("https://vega.github.io/schema/vega-lite/") for s in specs.values())
    ci = next(v for rows in specs["chart-0"]["datasets"].values() for v in rows if v["retriever"] == "good")
    assert ci["value"] == pytest.approx(0.65) and ci["lo"] <= 0.65 <= ci["hi"] and [ci["lo"], ci["hi"]] == data["retrievers"]["good"]["ndcg@10_ci95"]
    md = (tmp_path / "summary.md").read_text()
    assert "Not run:" in md and "citation_precision" in md
