"""`jobrag ask` / `jobrag chat` / `jobrag bench query` as a user runs them, over the bundled sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.sources import SAMPLE_PATH


def jobrag(*args: str, env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], capture_output=True, text=True, timeout=400,
                          env={**os.environ, **env}, input=stdin)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> dict:
    env = {"JOBRAG_HOME": str(tmp_path_factory.mktemp("ask-home"))}
    proc = jobrag("ingest", "--source", "sample", "--limit", "80", "--no-progress", env=env)
    assert proc.returncode == 0, proc.stderr
    return env


def sample_ids() -> set[str]:
    return {json.loads(line)["id"] for line in SAMPLE_PATH.read_text().splitlines()}


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid:sentence-transformers/all-MiniLM-L6-v2"])
def test_ask_json_returns_existing_listings_with_scores(home: dict, retriever: str) -> None:
    proc = jobrag("ask", "remote python data engineer", "--llm", "none", "--json", "--retriever", retriever, env=home)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["sources"] and {s["id"] for s in answer["sources"]} <= sample_ids()
    assert all(isinstance(s["score"], float) for s in answer["sources"])
    assert answer["sources"][0]["title"] and "data" in answer["text"].lower()
    # listings that meet what the question asks for ("remote") and match about as well as the best one come first, then
    # the closest matches (each naming what it misses); each block is ranked by score
    n_met = answer["constraints_met"]
    assert answer["constraints_applied"] and n_met >= 1 and not any(s["unmet"] for s in answer["sources"][:n_met])
    scores = [s["score"] for s in answer["sources"]]
    assert scores[:n_met] == sorted(scores[:n_met], reverse=True) and scores[n_met:] == sorted(scores[n_met:], reverse=True)


def test_ask_prints_what_it_understood_and_can_drop_it(home: dict) -> None:
    proc = jobrag("ask", "part-time registered nurse paying over $20 an hour", "--llm", "none", env=home)
    assert proc.returncode == 0, proc.stderr
    assert "understood (applied): part-time [employment] · pays ≥ $20 an hour (≈ $41,600 a year) [min_pay]" in proc.stdout
    dropped = json.loads(jobrag("ask", "part-time registered nurse paying over $20 an hour", "--llm", "none", "--json",
                                "--ignore", "min_pay", env=home).stdout)
    assert dropped["ignored_filters"] == ["min_pay"] and dropped["constraints_applied"]


def test_a_hostile_listing_answer_carries_nothing_active(tmp_path: Path) -> None:
    import re

    from tests.conftest import ACTIVE_CONTENT, INJECTED, write_jsonl

    rows = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[:20]] + [INJECTED]
    env = {"JOBRAG_HOME": str(tmp_path / "home")}
    assert jobrag("ingest", "--source", str(write_jsonl(tmp_path / "rows.jsonl", rows)), "--no-progress", env=env).returncode == 0
    answer = json.loads(jobrag("ask", "night shift warehouse forklift", "--llm", "none", "--json", env=env).stdout)
    hostile = [s for s in answer["sources"] if s["id"] == "evil-1"]
    assert hostile and "Night Shift Warehouse Associate" in answer["text"]
    assert [p for p in ACTIVE_CONTENT if re.search(p, answer["text"])] == []
    stored = hostile[0]["chunk"]
    assert "<|im_start|>" not in stored and "\u202e" not in stored  # removed at ingest


def test_ask_with_filters_and_bad_filter(home: dict) -> None:
    proc = jobrag("ask", "engineer", "--llm", "none", "--json", "--filter", "workplace=Remote", env=home)
    assert proc.returncode == 0, proc.stderr
    assert all(s["metadata"]["workplace"] == "Remote" for s in json.loads(proc.stdout)["sources"])
    bad = jobrag("ask", "engineer", "--llm", "none", "--filter", "colour=red", env=home)
    assert bad.returncode == 2 and bad.stderr.startswith("error: filter 'colour=red'")


def test_ask_before_ingest_says_what_to_run(tmp_path: Path) -> None:
    proc = jobrag("ask", "nurse", "--llm", "none", env={"JOBRAG_HOME": str(tmp_path / "empty")})
    assert proc.returncode == 2 and "run `jobrag ingest`" in proc.stderr and "Traceback" not in proc.stderr


def test_unreachable_llm_degrades_to_sources(home: dict) -> None:
    env = {**home, "JOBRAG_LLM__API_BASE": "http://127.0.0.1:9/v1", "JOBRAG_LLM__MODEL": "m", "JOBRAG_LLM__MAX_RETRIES": "0"}
    proc = jobrag("ask", "sous chef", "--llm", "openai", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert "unavailable" in answer["notice"] and answer["sources"] and f"[{answer['sources'][0]['id']}]" in answer["text"]


def test_chat_repl_keeps_history(home: dict) -> None:
    proc = jobrag("chat", "--llm", "none", env=home, stdin="data engineer jobs\nwhich of those are remote?\n/quit\n")
    assert proc.returncode == 0, proc.stderr
    turns = proc.stdout.split("you> ")
    assert len(turns) == 4 and "sources" in turns[1] and "sources" in turns[2]
    assert "Remote" in turns[2] and "On-site" not in turns[2] and "Hybrid" not in turns[2]


def test_bench_query_prints_stages_and_bound(home: dict) -> None:
    proc = jobrag("bench", "query", "--n", "10", "--generate", "0", env=home)
    assert proc.returncode == 0, proc.stderr
    for figure in ("embed_query_ms p50", "search_ms p95", "brute_force_search_ms p50", "HNSW top-k agreement"):
        assert figure in proc.stdout
