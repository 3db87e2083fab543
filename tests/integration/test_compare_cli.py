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
from tests.eval.judge import reply
from tests.helpers.openai_server import OpenAIStub


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
    judged = [*qrels, *(f"q{i}\t{rows[59 - i]['id']}\t0" for i in range(12))]  # pooled judgments: grade-0 pairs too
    (root / "judgments_all.tsv").write_text("\n".join(judged) + "\n")
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
        assert 0 < m["judged@10"] < 1 and m["ndcg@10"] <= m["ndcg@10_condensed"] <= 1  # judgments_all.tsv: pool-bias columns
    assert len(data["deltas"]) == 3 * 7 and {"a", "b", "metric", "delta", "ci95", "p_value", "wins", "ties", "losses"} <= set(data["deltas"][0])
    assert any("not in the corpus" in n for n in data["notes"]) and any("no relevant document" in n for n in data["notes"])
    rows = list(csv.DictReader((out / "per_query.csv").open()))
    assert len(rows) == 12 and "base:ndcg@10" in rows[0] and "hyb:top10" in rows[0] and "bm25:ndcg@10_condensed" in rows[0]
    assert "NDCG@10" in proc.stdout and "report:" in proc.stdout
    page = (out / "report.html").read_text()
    assert page.count('class="histogram"') == 3  # one per pair of retrievers
    assert page.count('class="projection"') == 1  # one per embedding model (base and hyb share MiniLM)
    assert 'class="whisker"' in page and "<script src" not in page and "<link" not in page
    assert "answers" not in data  # no --answers: no answer columns


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


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory) -> Path:
    """One JOBRAG_HOME for the answer tests, so the 60-listing pool is ingested once."""
    return tmp_path_factory.mktemp("home")


def test_compare_answers_without_a_judge(beir: Path, shared_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = jobrag("compare", "--queries", str(beir), "--corpus", str(beir / "corpus.jsonl"), "--retriever", "base=dense", "--retriever", "bm25=bm25",
                  "--answers", "--llm", "none", "--answer-limit", "4", "--no-projection", "--out", str(out), env={"JOBRAG_HOME": str(shared_home)})
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "summary.json").read_text())
    answers = data["answers"]
    assert {"citation_precision", "id_context_precision", "id_context_recall"} <= set(answers["metrics_run"])
    assert {"faithfulness", "answer_relevancy", "llm_context_precision", "llm_context_recall"} <= set(answers["metrics_not_run"])
    assert all("judge" in answers["metrics_not_run"][m] for m in ("faithfulness", "answer_relevancy"))
    assert answers["per_retriever"]["base"]["id_context_recall"]["n"] == 4 and data["retrievers"]["base"]["id_context_recall"] is not None
    assert any(d["metric"] == "id_context_recall" and d["n"] == 4 for d in data["deltas"])
    rows = list(csv.DictReader((out / "per_query.csv").open()))
    assert len(rows) == 12 and rows[0]["base:answer"] and rows[0]["base:context_ids"] and rows[-1]["base:answer_n_a"] == "not answered"
    assert "not run:" in proc.stdout and "faithfulness" in proc.stdout


def test_compare_answers_judged_by_a_server_on_localhost(beir: Path, shared_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    with OpenAIStub(reply) as stub:
        env = {"JOBRAG_HOME": str(shared_home), "JOBRAG_LLM__API_BASE": stub.base_url, "JOBRAG_LLM__MODEL": "stub-model",
               "JOBRAG_LLM__MAX_RETRIES": "0", "JOBRAG_LLM__TIMEOUT_S": "20"}
        proc = jobrag("compare", "--queries", str(beir), "--corpus", str(beir / "corpus.jsonl"), "--retriever", "base=dense", "--retriever", "bm25=bm25",
                      "--answers", "--llm", "openai", "--judge", "openai", "--judge-model", "stub-judge", "--answer-limit", "3", "--no-projection",
                      "--out", str(out), env=env)
        models = {r["body"].get("model") for r in stub.requests}
    assert proc.returncode == 0, proc.stderr
    assert models == {"stub-model", "stub-judge"}  # answers from the LLM, grades from the judge, both on 127.0.0.1
    data = json.loads((out / "summary.json").read_text())
    answers = data["answers"]
    assert {"faithfulness", "answer_relevancy", "llm_context_precision"} <= set(answers["metrics_run"])
    assert "reference" in answers["metrics_not_run"]["llm_context_recall"]
    for label in ("base", "bm25"):
        per = answers["per_retriever"][label]
        assert per["faithfulness"]["n"] == 3 and per["faithfulness"]["failed"] == 0 and per["faithfulness"]["mean"] == pytest.approx(1.0, abs=1e-6)
        assert per["citation_precision"]["n"] == 3  # the stub LLM cites the first listing
    assert "127.0.0.1" in answers["judge"] and json.loads((out / "manifest.json").read_text())["answers"]["ragas"]
    rows = list(csv.DictReader((out / "per_query.csv").open()))
    assert rows[0]["base:faithfulness"] and rows[0]["base:cited"]


def test_compare_answer_options_are_checked(beir: Path, tmp_path: Path) -> None:
    env = {"JOBRAG_HOME": str(tmp_path / "home")}
    no_endpoint = jobrag("compare", "--queries", str(beir), "--retriever", "b=bm25", "--answers", "--judge", "openai", env=env)
    assert no_endpoint.returncode == 2 and "needs an OpenAI-compatible endpoint" in no_endpoint.stderr and "Traceback" not in no_endpoint.stderr
    unknown = jobrag("compare", "--queries", str(beir), "--retriever", "b=bm25", "--answers", "--judge", "gpt4", env=env)
    assert unknown.returncode == 2 and "unknown judge mode 'gpt4'" in unknown.stderr
    no_label = jobrag("compare", "--queries", str(beir), "--retriever", "bm25", env=env)
    assert no_label.returncode == 2 and "LABEL=SPEC" in no_label.stderr
    missing = jobrag("compare", "--queries", str(tmp_path / "nope"), "--retriever", "b=bm25", env=env)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_judge_endpoint_comes_from_flags_then_eval_settings_then_llm_never_a_default() -> None:
    from rag_app.cli.cmd_compare import _judge
    from rag_app.errors import ConfigError
    from rag_app.settings import load_settings

    with pytest.raises(ConfigError, match="no default endpoint"):
        _judge("openai", None, None, load_settings())
    settings = load_settings(llm={"api_base": "http://127.0.0.1:1/v1", "model": "answerer", "api_key": "llm-key"},
                             eval={"judge_api_base": "http://127.0.0.1:2/v1", "judge_model": "judge", "judge_api_key": "judge-key"})
    cfg = _judge("openai", None, None, settings)
    assert (cfg.api_base, cfg.model, cfg.api_key) == ("http://127.0.0.1:2/v1", "judge", "judge-key")
    cfg = _judge("openai", "http://127.0.0.1:3/v1", "flag-judge", settings)
    assert (cfg.api_base, cfg.model) == ("http://127.0.0.1:3/v1", "flag-judge")
    assert _judge("none", None, None, settings) is None
