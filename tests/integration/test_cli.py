"""The `jobrag` CLI as a user runs it: real subprocesses, real models, real Chroma (on disk and `chroma run`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag_app.server.bench import free_port
from tests.conftest import listing_row, write_jsonl
from tests.helpers.serve import chroma_server as start_chroma


def jobrag(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, message, code", [
    (["ingest", "--source", "/no/such/jobs.csv"], "does not exist", 2),
    (["ingest", "--source", "{csv}", "--map", "description=Blurb"], "mapped column(s) Blurb not in the source", 2),
    (["ingest", "--source", "{csv}"], "no column for description", 2),
    (["ingest", "--source", "{empty}"], "is empty", 2),
    (["ingest", "--source", "hub:nobody/no-such-jobs"], "cannot load hub dataset", 2),
])
def test_unusable_sources_are_one_line_errors(tmp_path: Path, args: list[str], message: str, code: int) -> None:
    (tmp_path / "jobs.csv").write_text("Job Title,Text Body\nNurse,Care\n")
    (tmp_path / "empty.jsonl").write_text("")
    args = [a.format(csv=tmp_path / "jobs.csv", empty=tmp_path / "empty.jsonl") for a in args]
    proc = jobrag(*args)
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_all_rows_rejected_exits_nonzero_some_rejected_exits_zero(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [listing_row(i, title="") for i in range(3)])
    proc = jobrag("ingest", "--source", str(bad), "--no-progress")
    assert proc.returncode == 4 and "all 3 rows rejected" in proc.stderr and "Traceback" not in proc.stderr
    mixed = write_jsonl(tmp_path / "mixed.jsonl", [listing_row(1), listing_row(2, title="")])
    proc = jobrag("ingest", "--source", str(mixed), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "1 rejected row(s)" in proc.stdout
    rejects = Path(os.environ["JOBRAG_HOME"]) / "reports" / "ingest-rejects.jsonl"
    assert json.loads(rejects.read_text())["reason"] == "missing title"


def test_config_show_prints_effective_settings(tmp_path: Path) -> None:
    cfg = Path(os.environ["JOBRAG_CONFIG_DIR"])
    (cfg / "settings.yaml").write_text("retrieval: {top_k: 3}\n")
    (cfg / "settings-demo.yaml").write_text("retrieval: {top_k: 4}\n")
    proc = jobrag("--profile", "demo", "config", "show", env={"JOBRAG_LLM__API_KEY": "sk-secret"})
    assert proc.returncode == 0, proc.stderr
    assert "top_k: 4" in proc.stdout and "settings-demo.yaml" in proc.stdout
    assert "sk-secret" not in proc.stdout and "**********" in proc.stdout


def _collection_listing_counts(home: Path) -> tuple[dict[str, int], int, list]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(home / "chroma"), settings=ChromaSettings(anonymized_telemetry=False))
    (coll,) = client.list_collections()
    metas = coll.get(include=["metadatas"])["metadatas"]
    counts: dict[str, int] = {}
    for m in metas:
        counts[m["listing_id"]] = counts.get(m["listing_id"], 0) + 1
    return counts, coll.count(), metas


@pytest.mark.slow
@pytest.mark.e2e
def test_kill_dash_9_mid_ingest_then_rerun_leaves_every_listing_exactly_once(tmp_path: Path) -> None:
    home = tmp_path / "killed"
    env = {"JOBRAG_HOME": str(home), "JOBRAG_PROFILES": "test", "PYTHONUNBUFFERED": "1"}  # batches of 8 listings
    proc = subprocess.Popen([sys.executable, "-m", "rag_app.cli", "--log-level", "INFO", "ingest", "--source", "sample",
                             "--limit", "64", "--no-progress"], stderr=subprocess.PIPE, text=True, env={**os.environ, **env})
    deadline = time.time() + 240
    for line in proc.stderr:  # kill for real once half the batches are committed
        if "committed batch 4:" in line or time.time() > deadline:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    partial, _, _ = _collection_listing_counts(home)
    assert 0 < len(partial) < 64

    rerun = jobrag("ingest", "--source", "sample", "--limit", "64", "--no-progress", "--json", env=env)
    assert rerun.returncode == 0, rerun.stderr
    resumed = json.loads(rerun.stdout)
    assert resumed["unchanged"] >= 24 and resumed["added"] + resumed["updated"] + resumed["unchanged"] == 64
    counts, total, metas = _collection_listing_counts(home)
    assert len(counts) == 64
    expected = {m["listing_id"]: m["n_chunks"] for m in metas}
    assert counts == expected and total == sum(expected.values())  # every listing complete, no chunk twice
    again = json.loads(jobrag("ingest", "--source", "sample", "--limit", "64", "--no-progress", "--json", env=env).stdout)
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 64)
    assert _collection_listing_counts(home)[1] == total


@pytest.fixture
def chroma_server(tmp_path: Path):
    with start_chroma(tmp_path / "server") as port:
        yield port


def test_http_store_mode_against_a_real_chroma_server(tmp_path: Path, chroma_server: int) -> None:
    env = {"JOBRAG_STORE__MODE": "http", "JOBRAG_STORE__PORT": str(chroma_server), "JOBRAG_STORE__HOST": "127.0.0.1"}
    src = write_jsonl(tmp_path / "jobs.jsonl", [listing_row(i) for i in range(5)])
    first = jobrag("ingest", "--source", str(src), "--no-progress", env=env)
    assert first.returncode == 0, first.stderr
    second = jobrag("ingest", "--source", str(src), "--no-progress", env=env)
    assert second.returncode == 0, second.stderr

    import chromadb

    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    (coll,) = client.list_collections()
    assert coll.count() == 5 and coll.metadata["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert not (Path(os.environ["JOBRAG_HOME"]) / "chroma").exists()  # nothing went to the embedded store


def test_unreachable_chroma_server_is_one_line(tmp_path: Path) -> None:
    env = {"JOBRAG_STORE__MODE": "http", "JOBRAG_STORE__PORT": str(free_port())}
    proc = jobrag("ingest", "--source", "sample", "--limit", "2", "--no-progress", env=env)
    assert proc.returncode == 2 and "cannot open Chroma (http)" in proc.stderr and "Traceback" not in proc.stderr
