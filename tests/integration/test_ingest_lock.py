"""Concurrent ingests into one collection queue on its lock: real processes, the real packaged MiniLM, Chroma on disk."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from ingest.lock import CollectionLock, CollectionLockedError, lock_name
from ingest.pipeline import Ingestor
from tests.conftest import REPO, listing_row, write_jsonl


def cli_ingest(src, home, timeout_s: float) -> subprocess.Popen:
    env = {**os.environ, "JOBRAG_HOME": str(home), "JOBRAG_INGEST__BATCH_LISTINGS": "4", "JOBRAG_INGEST__LOCK_TIMEOUT_S": str(timeout_s),
           "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "rag_app.cli", "ingest", "--source", str(src), "--json", "--no-progress"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_held_lock_times_out_naming_its_holder_and_shards_do_not_block(tmp_path, caplog) -> None:
    held = CollectionLock(tmp_path / "locks", "jobs-x", "first.jsonl", timeout_s=None)
    with held:
        assert held.holder()["pid"] == os.getpid()
        waiter = CollectionLock(tmp_path / "locks", "jobs-x", "second.jsonl", timeout_s=0.4, report_every_s=0.1)
        with caplog.at_level(logging.WARNING, logger="ingest.lock"), pytest.raises(CollectionLockedError) as info:
            waiter.__enter__()
        message = str(info.value)
        assert f"pid {os.getpid()} on {socket.gethostname()}" in message and "source 'first.jsonl'" in message
        assert "ingest.lock_timeout_s=0.4" in message and "\n" not in message
        assert any(f"locked by pid {os.getpid()}" in r.getMessage() for r in caplog.records)  # it said whom it waited for
        with CollectionLock(tmp_path / "locks", "jobs-x", "s1", timeout_s=0, shard=(1, 2)), \
                CollectionLock(tmp_path / "locks", "jobs-x", "s2", timeout_s=0, shard=(2, 2)):
            pass  # shards of one collection write disjoint listings: they never wait for each other or the whole
    assert not held.sidecar.exists()  # a clean release removes the holder's note
    with CollectionLock(tmp_path / "locks", "jobs-x", "second.jsonl", timeout_s=0):
        pass
    assert lock_name("jobs-x", (3, 4)) == "jobs-x.shard-3-of-4"
    with pytest.raises(ValueError, match="between 1 and N"):
        lock_name("jobs-x", (5, 4))


def test_an_ingest_process_fails_with_one_line_naming_the_holder(tmp_path, settings, embedder, store) -> None:
    src = write_jsonl(tmp_path / "jobs.jsonl", [listing_row(i) for i in range(3)])
    collection = Ingestor(settings, embedder, store).collection.name
    with CollectionLock(settings.home / "locks", collection, "holder-test", timeout_s=0):
        proc = cli_ingest(src, settings.home, timeout_s=1)
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == CollectionLockedError.exit_code, err
    error = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"pid {os.getpid()}" in error[0] and "source 'holder-test'" in error[0], err
    assert f"collection {collection!r}" in error[0] and out == ""


@pytest.mark.slow
@pytest.mark.e2e
def test_two_concurrent_ingests_do_the_work_once(tmp_path, settings) -> None:
    from rag_app.store import Store

    rows = [listing_row(i) for i in range(24)]
    src = write_jsonl(tmp_path / "jobs.jsonl", rows)
    procs = [cli_ingest(src, settings.home, timeout_s=300) for _ in range(2)]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    summaries = [json.loads(out) for p, out, err in results if p.returncode == 0]
    for p, _, err in results:
        if p.returncode:  # allowed: it waited past its timeout, and then it must name the holder
            assert p.returncode == CollectionLockedError.exit_code and "is being written by another ingest (pid" in err, err
    assert sum(s["added"] for s in summaries) == 24  # never both: the second found the first's work done
    assert sorted(s["unchanged"] for s in summaries) == ([0, 24] if len(summaries) == 2 else [0])
    coll = Store.from_settings(settings).client.get_collection(summaries[0]["collection"])
    assert coll.count() == sum(s["chunks_written"] for s in summaries)
    assert {m["listing_id"] for m in coll.get(include=["metadatas"])["metadatas"]} == {r["id"] for r in rows}


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path) -> None:
    import signal

    script = ("import sys, time; from pathlib import Path; from ingest.lock import CollectionLock\n"
              f"with CollectionLock(Path({str(tmp_path / 'locks')!r}), 'jobs-x', 'doomed', None):\n"
              "    print('held', flush=True); time.sleep(600)\n")
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CollectionLockedError, match=rf"pid {holder.pid} .*source 'doomed'"):
            CollectionLock(tmp_path / "locks", "jobs-x", "next", timeout_s=0).__enter__()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    lock = CollectionLock(tmp_path / "locks", "jobs-x", "next", timeout_s=0)  # the kernel dropped the dead holder's lock
    with lock:
        assert lock.holder()["source"] == "next" and lock.holder()["pid"] == os.getpid()  # the stale note was replaced
