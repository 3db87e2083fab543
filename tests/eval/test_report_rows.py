"""The compare report's search-engineer rows: the oracle, segments, per-query columns, provenance, several corpora, model size."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from eval.benchmarks import load_corpora, query_fields
from eval.provenance import code_commit, file_record, inputs_record, library_versions
from eval.report import write_report
from eval.runs import ORACLE_SPEC, Run, deltas, model_size_mb, oracle_run
from eval.segments import MISSING, segment_report
from eval.stats import bootstrap_ci, compare
from rag_app.errors import ConfigError, SourceError


def _run(label: str, ndcg: dict[str, float], first: dict[str, float | None] | None = None, judged: bool = False) -> Run:
    run = Run(label=label, spec="bm25", ms_per_query=1.5)
    for q, v in ndcg.items():
        rank = (first or {}).get(q, 1.0)
        run.per_query[q] = {"first_rel_rank": rank, "hit@1": float(rank == 1.0), "hit@3": float(rank is not None and rank <= 3),
                            "hit@10": float(rank is not None), "rr@10": 1 / rank if rank else 0.0, "ndcg@10": v, "recall@10": v,
                            "recall@100": min(1.0, v + 0.1), "map@100": v / 2}
        if judged:
            run.per_query[q] |= {"judged@10": 0.5, "ndcg@10_condensed": min(1.0, v + 0.2)}
        run.rankings[q] = ["d1", "d2"]
    return run


A = {"q1": 1.0, "q2": 0.5, "q3": 0.2, "q4": 0.9, "q5": 0.0, "q6": 0.3}
B = {"q1": 0.5, "q2": 0.5, "q3": 0.6, "q4": 0.1, "q5": 0.4, "q6": 0.9}
STYLE = {"q1": "keyword", "q2": "keyword", "q3": "natural", "q4": "natural", "q5": "natural"}  # q6 has no style


def test_the_oracle_takes_each_querys_best_value_of_every_metric() -> None:
    a = _run("a", A, first={"q3": 5.0, "q5": None}, judged=True)
    b = _run("b", B, first={"q1": 2.0, "q3": None}, judged=True)
    oracle = oracle_run([a, b])
    assert oracle.spec == ORACLE_SPEC and oracle.ms_per_query is None and sorted(oracle.per_query) == sorted(A)
    for q in A:
        assert oracle.per_query[q]["ndcg@10"] == max(A[q], B[q])
        assert oracle.per_query[q]["ndcg@10_condensed"] == max(a.per_query[q]["ndcg@10_condensed"], b.per_query[q]["ndcg@10_condensed"])
    assert oracle.per_query["q1"]["hit@1"] == 1.0 and oracle.per_query["q1"]["first_rel_rank"] == 1.0  # a found it first
    assert oracle.per_query["q3"]["first_rel_rank"] == 5.0 and oracle.per_query["q5"]["first_rel_rank"] == 1.0
    assert "judged@10" not in oracle.per_query["q1"]  # a property of the pool, not of a ranking
    summary = oracle.summary()
    assert summary["ndcg@10"] == pytest.approx(sum(max(A[q], B[q]) for q in A) / 6)
    assert summary["ndcg@10"] >= max(a.summary()["ndcg@10"], b.summary()["ndcg@10"]) and summary["ms_per_query"] is None
    assert oracle_run([a]) is None and oracle_run([]) is None


def test_segments_hold_each_segments_means_cis_and_paired_deltas() -> None:
    runs = [_run("a", A), _run("b", B)]
    seg = segment_report(runs, oracle_run(runs), {"style": STYLE}, 500, 500, 0)["style"]
    assert list(seg) == ["keyword", "natural", MISSING] and sum(s["n"] for s in seg.values()) == 6
    natural = seg["natural"]
    members = ["q3", "q4", "q5"]
    mean, lo, hi = bootstrap_ci([A[q] for q in members], 500, 0)
    assert natural["n"] == 3 and natural["retrievers"]["a"]["ndcg@10"] == pytest.approx(mean) and natural["retrievers"]["a"]["ndcg@10_ci95"] == [lo, hi]
    assert {"mrr@10", "mrr@10_ci95", "recall@100", "map@100_ci95", "hit@3"} <= set(natural["retrievers"]["b"])
    assert natural["oracle"]["ndcg@10"] == pytest.approx((0.6 + 0.9 + 0.4) / 3)
    [d] = natural["deltas"]
    assert (d["a"], d["b"], d["metric"], d["n"]) == ("a", "b", "ndcg@10", 3)
    assert {k: d[k] for k in ("delta", "ci95", "p_value", "wins", "ties", "losses")} == compare([A[q] for q in members], [B[q] for q in members], 500, 500, 0)
    assert seg[MISSING]["n"] == 1 and seg[MISSING]["deltas"][0]["delta"] == pytest.approx(0.6)
    assert deltas(runs, 500, 500, 0, qids=members, metrics=("ndcg@10",)) == natural["deltas"]


def test_report_files_show_the_oracle_row_segment_tables_and_every_per_query_metric(tmp_path: Path) -> None:
    runs = [_run("a", A), _run("b", B)]
    runs[1].model_size_mb = 86.5
    queries = {q: f"query {q}" for q in A}
    data = write_report(tmp_path, runs, queries, [], {"m": 1}, 500, 500, 0, segment_fields={"style": STYLE})
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved["retrievers"]) == {"a", "b"}  # the oracle is no retriever: its own key
    oracle = saved["oracle"]
    assert oracle["spec"] == ORACLE_SPEC and oracle["of"] == ["a", "b"] and oracle["n"] == 6 and "ms_per_query" not in oracle
    assert oracle["ndcg@10"] == pytest.approx(data["oracle"]["ndcg@10"]) and oracle["ndcg@10_ci95"][0] <= oracle["ndcg@10"] <= oracle["ndcg@10_ci95"][1]
    assert oracle["headroom"]["best_retriever"] == "b" and oracle["headroom"]["delta"] == pytest.approx(oracle["ndcg@10"] - saved["retrievers"]["b"]["ndcg@10"])
    assert set(saved["segments"]["style"]) == {"keyword", "natural", MISSING}
    assert saved["retrievers"]["b"]["model_size_mb"] == 86.5 and saved["retrievers"]["a"]["ms_per_query"] == 1.5
    md = (tmp_path / "summary.md").read_text()
    assert f"| {ORACLE_SPEC} |" in md and "headroom" in md and "## By style" in md and "| natural | 3 |" in md
    assert "model_size_mb" in md and "| 86.500 |" in md
    page = (tmp_path / "report.html").read_text()
    assert "<h2>By style</h2>" in page and f"<td>{ORACLE_SPEC}</td>" in page and "<td>86.500</td>" in page
    ci_bars = json.loads(page.split("id='charts'>")[1].split("</script>")[0])["chart-0"]
    assert [row["retriever"] for rows in ci_bars["datasets"].values() for row in rows] == ["a", "b", "oracle"]
    rows = list(csv.DictReader((tmp_path / "per_query.csv").open()))
    assert rows[0]["segment:style"] == "keyword" and rows[5]["segment:style"] == ""
    assert float(rows[0]["a:map@100"]) == 0.5 and float(rows[0]["b:recall@100"]) == 0.6
    one = write_report(tmp_path / "one", runs[:1], queries, [], {}, 100, 100, 0)
    assert "oracle" not in one and "segments" not in one  # one retriever: no oracle; no segment field: no segments


def test_segment_fields_come_from_queries_jsonl_or_styles_json(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    rows = [{"_id": "q1", "text": "a", "style": "natural", "region": "TX"}, {"_id": "q2", "text": "b", "style": "keyword"},
            {"_id": "q3", "text": "c", "region": None}]
    (beir / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert query_fields(beir) == {"style": {"q1": "natural", "q2": "keyword"}}
    assert query_fields(beir, ["region"]) == {"style": {"q1": "natural", "q2": "keyword"}, "region": {"q1": "TX"}}
    with pytest.raises(ConfigError, match=r"--segment-by seniority: no query .* has that field \(fields: region, style\)"):
        query_fields(beir, ["seniority"])
    with pytest.raises(ConfigError, match="--segment-by text: 3 distinct values"):
        query_fields(beir, ["text"], max_values=2)
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    (pairs / "styles.json").write_text(json.dumps({"q-1": "keyword", "q-2": "natural"}))
    assert query_fields(pairs) == {"style": {"q-1": "keyword", "q-2": "natural"}}
    assert query_fields(tmp_path) == {}


def _jobs(path: Path, ids: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": i, "title": f"Job {i}", "description": f"About {i}."}) + "\n" for i in ids))
    return path


def test_several_corpora_are_one_pool_and_an_id_in_two_files_is_an_error(tmp_path: Path) -> None:
    a, b = _jobs(tmp_path / "a.jsonl", ["1", "2"]), _jobs(tmp_path / "b.jsonl", ["3"])
    union = load_corpora([a, b, a])
    assert sorted(union) == ["1", "2", "3"] and "About 3." in union["3"]
    clash = _jobs(tmp_path / "c.jsonl", ["4", "2"])
    with pytest.raises(SourceError, match=rf"listing id '2' is in both {a} and {clash}"):
        load_corpora([a, b, clash])


def test_manifest_inputs_are_hashed_and_versions_recorded(tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\n')
    (beir / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    corpus = _jobs(tmp_path / "jobs.jsonl", ["d1"])
    extra = tmp_path / "more.tsv"
    extra.write_text("q1\td2\t0\n")
    record = inputs_record(beir, "test", [corpus], [extra])
    assert record["queries"]["sha256"] == hashlib.sha256((beir / "queries.jsonl").read_bytes()).hexdigest()
    assert record["qrels"]["path"].endswith("test.tsv") and record["judgments_all"] is None
    assert record["corpus"][0]["sha256"] == hashlib.sha256(corpus.read_bytes()).hexdigest() and record["extra_judgments"][0]["path"] == str(extra)
    (beir / "corpus.jsonl").write_text("{}\n")
    assert file_record(beir)["path"] == str(beir / "corpus.jsonl")  # a BEIR dir given as corpus: its corpus file
    versions = library_versions()
    assert {"torch", "sentence-transformers", "transformers", "llama-index-core", "chromadb", "bm25s", "ragas", "jobrag"} == set(versions)
    assert versions["sentence-transformers"] and library_versions(["no-such-package-xyz"]) == {"no-such-package-xyz": None}


def test_code_commit_is_the_checkouts_head_with_a_dirty_flag_and_none_outside_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "f.txt").write_text("1")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    assert code_commit(repo) == {"commit": head, "dirty": False, "root": str(repo)}
    (repo / "f.txt").write_text("2")
    assert code_commit(repo)["dirty"] is True
    (repo / "sub").mkdir()
    assert code_commit(repo / "sub") is None  # inside a checkout but not its root: an installed copy, not the checkout
    outside = tmp_path / "plain"
    outside.mkdir()
    assert code_commit(outside) is None


def test_model_size_counts_each_weight_file_once(tmp_path: Path) -> None:
    model = tmp_path / "m"
    (model / "2_Dense").mkdir(parents=True)
    (model / "checkpoint-10").mkdir()
    (model / "model.safetensors").write_bytes(b"\0" * 2**20)
    (model / "pytorch_model.bin").write_bytes(b"\0" * 2**20)  # the same weights in the older format
    (model / "2_Dense" / "model.safetensors").write_bytes(b"\0" * 2**19)
    (model / "checkpoint-10" / "model.safetensors").write_bytes(b"\0" * 2**20)  # a trainer checkpoint: a copy
    assert model_size_mb(str(model)) == pytest.approx(1.5)
    assert 80 < model_size_mb("sentence-transformers/all-MiniLM-L6-v2") < 95  # the packaged copy of a hub name
    assert model_size_mb(None) is None and model_size_mb("org/not-installed-model") is None
