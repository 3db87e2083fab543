"""`jobrag serve --workers 2` over a real Chroma server on loopback: two uvicorn worker processes answer, embedded
Chroma is refused with the fix, and a real SIGTERM stops them all cleanly. Slow (two model loads) and not end-to-end,
so `make test-all` runs it, not CI's `make test`; the two-machine scale-out test there covers the shared store."""

from __future__ import annotations

import json
import time

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from rag_app.server.bench import serve_subprocess  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.helpers.serve import chroma_server, cli, done, ids_found, machine, serve_env  # noqa: E402

pytestmark = [pytest.mark.slow]


@pytest.fixture
def chroma(tmp_path):
    with chroma_server(tmp_path / "chroma-server") as port:
        yield port


@pytest.fixture
def rows() -> list[dict]:
    from ingest.sources import SAMPLE_PATH

    return [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[:14]]


def test_serve_runs_worker_processes_over_the_chroma_server_and_stops_them_on_sigterm(chroma, rows, tmp_path) -> None:
    import signal

    import psutil

    embedded = cli(serve_env(tmp_path / "alone" / "home", tmp_path / "alone" / "config"), "serve", "--workers", "2")
    _, err = embedded.communicate(timeout=120)
    assert embedded.returncode != 0 and "chroma run" in err and "store.mode: http" in err  # embedded Chroma: refused, with the fix
    env = machine(tmp_path, "pool", chroma, store__collection="jobs-workers-test")
    done(cli(env, "ingest", "--source", str(write_jsonl(tmp_path / "rows.jsonl", rows[:14])), "--no-progress"))
    with serve_subprocess(env, ["--workers", "2"], tmp_path / "pool.log") as served:
        workers = [p for p in psutil.Process(served.proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        deadline, in_a_row = time.monotonic() + 300, 0
        while in_a_row < 8:  # each worker loads its own models: every request answered, whichever worker takes it
            status = httpx.post(f"{served.url}/v1/search", json={"query": "forklift operator", "k": 5}, timeout=60).status_code
            in_a_row = in_a_row + 1 if status == 200 else 0
            assert time.monotonic() < deadline, (tmp_path / "pool.log").read_text()[-3000:]
        assert "sample-0013" in ids_found(served.url, "forklift operator", "hybrid")
        assert all(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)  # the same two, never restarted
        assert "Traceback" not in (tmp_path / "pool.log").read_text()
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=90) == 0
        assert not [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]  # no worker left on the port
