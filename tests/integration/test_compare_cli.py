"""`jobrag compare` end to end on the sample: BEIR-layout queries written here, real retrievers, report files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.sources import SAMPLE_PATH


def jobrag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], capture_output=True, text=True, timeout=900, env={**os.environ, **env})


@pytest.fixture(scope="module")
def beir(tmp_path_factory) -> Path:
    """Queries about sample listings with graded qrels, and a 60-listing corpus file."""
    root = tmp_path_factory.mktemp("beir")
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:60]]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "qrels").mkdir()
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i, r in enumerate(rows[:12]):
        queries.append({"_id": f"q{i}", "text": f"{r['title'].lower()} in {r['location']}"})
        qrels.append(f"q{i}\t{r['id']}\t2")
        same = [o for o in rows if o["title"].split()[-1] == r["title"].split()[-1] and o["id"] != r["id"]][:2]
        qrels += [f"q{i}\t{o['id']}\t1" for o in same]
    queries.append({"_id": "q-none", "text": "astronaut"})  # no qrels: must be left out, with a note
    qrels.append("q0\tnot-in-corpus\t1")
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return root


def test_compare_writes_every_file_with_the_documented_schema(beir: Path, tmp_path: Path) -> None:
    env = {"JOBRAG_HOME": str(tmp_path / "home")}
    out = tmp_path / "report"
    proc = jobrag("compare", "--queries", str(beir), "--corpus", str(beir / "corpus.jsonl"), "--retriever", "base=dense",
                  "--retriever", "bm25=bm25", "--retriever", "hyb=hybrid:sentence-transformers/all-MiniLM-L6-v2", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"per_query.csv", "summary.json", "summary.md", "report.html", "manifest.json"}
    data = json.loads((out / "summary.json").read_text())
    assert data["n_queries"] == 12 and set(data["retrievers"]) == {"base", "bm25", "hyb"}
    for m in data["retrievers"].values():
        assert {"ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@3", "hit@10", "map@100", "ms_per_query"} <= set(m)
        assert 0 < m["ndcg@10"] <= 1 and m["hit@10"] > 0.5
    assert len(data["deltas"]) == 3 * 6 and {"a", "b", "metric", "delta", "ci95", "p_value", "wins", "ties", "losses"} <= set(data["deltas"][0])
    assert any("not in the corpus" in n for n in data["notes"]) and any("no relevant document" in n for n in data["notes"])
    rows = list(csv.DictReader((out / "per_query.csv").open()))
    assert len(rows) == 12 and "base:ndcg@10" in rows[0] and "hyb:top10" in rows[0]
    assert "NDCG@10" in proc.stdout and "report:" in proc.stdout


def test_compare_bad_inputs_are_clear(beir: Path, tmp_path: Path) -> None:
    env = {"JOBRAG_HOME": str(tmp_path / "home")}
    bad = jobrag("compare", "--queries", str(beir), "--retriever", "x=colbert:foo", env=env)
    assert bad.returncode == 2 and "unknown retriever spec" in bad.stderr and "Traceback" not in bad.stderr
    empty = tmp_path / "empty"
    (empty / "qrels").mkdir(parents=True)
    (empty / "queries.jsonl").write_text("")
    (empty / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    proc = jobrag("compare", "--queries", str(empty), "--corpus", str(beir / "corpus.jsonl"), "--retriever", "b=bm25", env=env)
    assert proc.returncode == 2 and "no query" in proc.stderr
