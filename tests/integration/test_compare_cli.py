"""`jobrag compare` end to end on the sample: BEIR-layout queries written here, real retrievers, report files."""

from __future__ import annotations

import csv
import hashlib
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
    """Queries about sample listings (with a `style` and a `kind` field) with graded qrels, a 60-listing corpus file and
    the same listings split over two files (40 + 20)."""
    root = tmp_path_factory.mktemp("beir")
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:60]]
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "part_a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:40]))
    (root / "part_b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[40:]))
    (root / "qrels").mkdir()
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i, r in enumerate(rows[:12]):
        queries.append({"_id": f"q{i}", "text": f"{r['title'].lower()} in {r['location']}", "style": ("keyword", "natural")[i % 2],
                        "kind": "early" if i < 4 else "late"})
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
    corpora = [beir / "part_a.jsonl", beir / "part_b.jsonl"]  # two files, one pool
    proc = jobrag("compare", "--queries", str(beir), "--corpus", str(corpora[0]), "--corpus", str(corpora[1]), "--retriever", "base=dense",
                  "--retriever", "bm25=bm25", "--retriever", "hyb=hybrid:sentence-transformers/all-MiniLM-L6-v2", "--segment-by", "kind",
                  "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in out.iterdir()} == {"per_query.csv", "summary.json", "summary.md", "report.html", "manifest.json"}
    data = json.loads((out / "summary.json").read_text())
    assert data["n_queries"] == 12 and set(data["retrievers"]) == {"base", "bm25", "hyb"}
    for m in data["retrievers"].values():
        assert {"ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@3", "hit@10", "map@100", "ms_per_query"} <= set(m)
        assert 0 < m["ndcg@10"] <= 1 and m["hit@10"] > 0.5
        assert 0 < m["judged@10"] < 1 and m["ndcg@10"] <= m["ndcg@10_condensed"] <= 1  # judgments_all.tsv: pool-bias columns
        assert m["ms_per_query"] > 0
    assert data["retrievers"]["bm25"]["model_size_mb"] is None
    assert all(80 < data["retrievers"][label]["model_size_mb"] < 95 for label in ("base", "hyb"))  # MiniLM's packaged copy
    oracle = data["oracle"]
    assert oracle["spec"] == "oracle (per-query best)" and oracle["of"] == ["base", "bm25", "hyb"] and oracle["n"] == 12
    assert all(oracle[k] >= max(m[k] for m in data["retrievers"].values()) - 1e-9 for k in ("ndcg@10", "mrr@10", "recall@100", "map@100"))
    assert oracle["headroom"]["delta"] >= 0 and "ms_per_query" not in oracle
    style, kind = data["segments"]["style"], data["segments"]["kind"]
    assert {v: s["n"] for v, s in style.items()} == {"keyword": 6, "natural": 6} and {v: s["n"] for v, s in kind.items()} == {"early": 4, "late": 8}
    for seg in (*style.values(), *kind.values()):
        assert set(seg["retrievers"]) == {"base", "bm25", "hyb"} and seg["oracle"]["ndcg@10"] is not None
        assert [d["metric"] for d in seg["deltas"]] == ["ndcg@10", "ndcg@10_condensed"] * 3  # pooled judgments: condensed too
        lo, hi = seg["retrievers"]["base"]["ndcg@10_ci95"]
        assert lo <= seg["retrievers"]["base"]["ndcg@10"] <= hi and all(d["n"] == seg["n"] for d in seg["deltas"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"] == [str(p) for p in corpora] and manifest["segment_by"] == ["style", "kind"]
    inputs = manifest["inputs"]
    assert [c["sha256"] for c in inputs["corpus"]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in corpora]
    assert inputs["queries"]["sha256"] == hashlib.sha256((beir / "queries.jsonl").read_bytes()).hexdigest() and inputs["qrels"]["sha256"]
    assert manifest["versions"]["sentence-transformers"] and manifest["versions"]["chromadb"] and "jobrag" in manifest["versions"]
    assert manifest["code"] is None or (len(manifest["code"]["commit"]) == 40 and isinstance(manifest["code"]["dirty"], bool))
    md = (out / "summary.md").read_text()
    assert "| oracle (per-query best) |" in md and "### NDCG@10 by style (mean [95 % CI])" in md and "## By kind" in md
    assert "oracle row: per-query best of base, bm25, hyb" in proc.stdout and "NDCG@10 by style" in proc.stdout
    size = f"{data['retrievers']['base']['model_size_mb']:.3f}"
    assert "ms/query" in proc.stdout and "size MB" in proc.stdout and proc.stdout.count(size) == 2  # the dense and the hybrid row
    assert len(data["deltas"]) == 3 * 7 and {"a", "b", "metric", "delta", "ci95", "p_value", "wins", "ties", "losses"} <= set(data["deltas"][0])
    assert any("not in the corpus" in n for n in data["notes"]) and any("no relevant document" in n for n in data["notes"])
    rows = list(csv.DictReader((out / "per_query.csv").open()))
    assert len(rows) == 12 and "base:ndcg@10" in rows[0] and "hyb:top10" in rows[0] and "bm25:ndcg@10_condensed" in rows[0]
    assert rows[0]["segment:style"] == "keyword" and rows[0]["segment:kind"] == "early" and rows[0]["base:map@100"] and rows[0]["hyb:recall@100"]
    assert "NDCG@10" in proc.stdout and "report:" in proc.stdout
    page = (out / "report.html").read_text()
    assert page.count('class="histogram"') == 3  # one per pair of retrievers
    assert page.count('class="projection"') == 1  # one per embedding model (base and hyb share MiniLM)
    assert 'class="whisker"' in page and "<script src" not in page and "<link" not in page
    assert "<h2>By style</h2>" in page and "<td>oracle (per-query best)</td>" in page
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
    (tmp_path / "clash.jsonl").write_text((beir / "part_b.jsonl").read_text().splitlines()[0] + "\n")
    clash = jobrag("compare", "--queries", str(beir), "--corpus", str(beir / "part_b.jsonl"), "--corpus", str(tmp_path / "clash.jsonl"),
                   "--retriever", "b=bm25", env=env)
    listing_id = json.loads((tmp_path / "clash.jsonl").read_text())["id"]
    assert clash.returncode == 2 and "Traceback" not in clash.stderr
    assert f"listing id '{listing_id}' is in both {beir / 'part_b.jsonl'} and {tmp_path / 'clash.jsonl'}" in clash.stderr
    no_field = jobrag("compare", "--queries", str(beir), "--retriever", "b=bm25", "--segment-by", "seniority", env=env)
    assert no_field.returncode == 2 and "--segment-by seniority: no query" in no_field.stderr and "kind, style" in no_field.stderr
    reserved = jobrag("compare", "--queries", str(beir), "--retriever", "oracle=bm25", env=env)
    assert reserved.returncode == 2 and "'oracle' is reserved" in reserved.stderr


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


def test_compare_on_a_gen_pairs_dir_breaks_down_by_its_styles(beir: Path, shared_home: Path, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (beir / "corpus.jsonl").read_text().splitlines()]
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    queries = {f"g{i}": f"{r['title'].lower()} job" for i, r in enumerate(rows[:8])}
    split = {"queries": queries, "corpus": {r["id"]: r["title"] for r in rows[:8]}, "relevant_docs": {f"g{i}": [r["id"]] for i, r in enumerate(rows[:8])},
             "mode": "text"}
    (pairs / "test.json").write_text(json.dumps(split))
    (pairs / "styles.json").write_text(json.dumps({q: ("keyword", "template")[i % 3 == 0] for i, q in enumerate(queries)}))
    out = tmp_path / "report"
    proc = jobrag("compare", "--queries", str(pairs), "--corpus", str(beir / "part_a.jsonl"), "--corpus", str(beir / "part_b.jsonl"),
                  "--retriever", "base=dense", "--retriever", "bm25=bm25", "--no-projection", "--out", str(out), env={"JOBRAG_HOME": str(shared_home)})
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "summary.json").read_text())
    assert data["n_queries"] == 8 and {v: s["n"] for v, s in data["segments"]["style"].items()} == {"keyword": 5, "template": 3}
    assert data["oracle"]["ndcg@10"] >= max(m["ndcg@10"] for m in data["retrievers"].values())
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    assert inputs["queries"]["path"] == str(pairs / "test.json") and inputs["styles"]["sha256"] == hashlib.sha256((pairs / "styles.json").read_bytes()).hexdigest()


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


def test_compare_takes_the_bundled_sample_as_corpus(tmp_path: Path) -> None:
    """`--corpus sample` (what `make demo` passes) is the bundled sample, as for `jobrag ingest --source sample`."""
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:6]]
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    split = {"queries": {f"s{i}": r["title"].lower() for i, r in enumerate(rows)}, "corpus": {r["id"]: r["title"] for r in rows},
             "relevant_docs": {f"s{i}": [r["id"]] for i, r in enumerate(rows)}, "mode": "text"}
    (pairs / "test.json").write_text(json.dumps(split))
    out = tmp_path / "report"
    proc = jobrag("compare", "--queries", str(pairs), "--corpus", "sample", "--retriever", "bm25=bm25", "--no-projection", "--out", str(out),
                  env={"JOBRAG_HOME": str(tmp_path / "home")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "manifest.json").read_text())["corpus"] == [str(SAMPLE_PATH)]
    assert json.loads((out / "summary.json").read_text())["n_queries"] == 6
