"""Under load and at shutdown, for real: a full generation queue answers 429 with Retry-After (never a hang) while
search still answers; SIGTERM lets an in-flight answer finish, then `jobrag serve` exits 0 and frees its port; SIGTERM
to `jobrag ui` leaves no streamlit behind. The LLM is an OpenAI-protocol stub that holds its reply until released."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from rag_app.server.bench import free_port, serve_subprocess  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.helpers.openai_server import OpenAIStub  # noqa: E402
from tests.helpers.serve import serve_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


class HeldModel:
    """A model that cites the first listing it was given, once the test lets it answer."""

    def __init__(self) -> None:
        self.go, self.waiting = threading.Event(), 0

    def __call__(self, messages: list[dict]) -> str:
        self.waiting += 1
        self.go.wait(120)
        listing = re.search(r'<listing id="([^"]+)"', messages[-1]["content"])
        return f"[{listing.group(1)}] fits this search." if listing else "No listing fits."


@pytest.fixture(scope="module")
def home(tmp_path_factory, embedder) -> Path:
    from ingest.pipeline import Ingestor, read_listings
    from ingest.sources import SAMPLE_PATH
    from rag_app.settings import load_settings
    from rag_app.store import Store

    root = tmp_path_factory.mktemp("load")
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[:12]]
    settings = load_settings(home=root / "home")
    Ingestor(settings, embedder, Store.from_settings(settings)).run(read_listings(str(write_jsonl(root / "jobs.jsonl", rows)), settings),
                                                                    progress=False)
    return root / "home"


def stub_env(home: Path, tmp: Path, stub: OpenAIStub) -> dict[str, str]:
    return serve_env(home, tmp / "config", llm__mode="openai", llm__api_base=stub.base_url, llm__model="stub", llm__max_retries="0",
                     server__llm_concurrency="1", server__llm_queue="1")


def wait_admitted(url: str, n: int) -> None:
    deadline = time.monotonic() + 120
    while httpx.get(f"{url}/readyz").json()["generation"]["admitted"] < n:
        assert time.monotonic() < deadline, f"{n} requests were never admitted"
        time.sleep(0.1)


def in_thread(fn) -> tuple[threading.Thread, list]:
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def test_a_full_queue_answers_429_with_retry_after_while_search_still_answers(home, tmp_path) -> None:
    import openai

    model = HeldModel()
    with OpenAIStub(model) as stub, serve_subprocess(stub_env(home, tmp_path, stub), [], tmp_path / "serve.log") as served:
        ask = lambda: httpx.post(f"{served.url}/v1/ask", json={"question": "forklift operator"}, timeout=120)  # noqa: E731
        first, first_out = in_thread(ask)
        wait_admitted(served.url, 1)
        second, second_out = in_thread(ask)
        wait_admitted(served.url, 2)  # one writing (held by the model), one queued: the gate is full
        refused = httpx.post(f"{served.url}/v1/ask", json={"question": "forklift operator"}, timeout=30)
        assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
        assert refused.json()["error"]["type"] == "queue_full" and "server.llm_queue" in refused.json()["error"]["message"]
        streamed = httpx.post(f"{served.url}/v1/ask", json={"question": "forklift operator", "stream": True}, timeout=30)
        assert streamed.status_code == 429  # refused before the stream starts
        client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="jobrag", messages=[{"role": "user", "content": "forklift operator"}])
        search = httpx.post(f"{served.url}/v1/search", json={"query": "forklift operator"}, timeout=60)  # retrieval is not gated
        assert search.status_code == 200 and search.json()["sources"]
        model.go.set()
        for thread in (first, second):
            thread.join(120)
        for response in (first_out[0], second_out[0]):
            answer = response.json()
            assert response.status_code == 200 and answer["llm"] == "openai: stub"
            assert answer["model_text"] and answer["cited_ids"][0] in answer["model_text"]  # the model wrote it, cited
        assert httpx.get(f"{served.url}/readyz").json()["generation"]["admitted"] == 0  # every place given back
        answered = client.chat.completions.create(model="jobrag", messages=[{"role": "user", "content": "forklift operator"}])
        cited = answered.model_extra["jobrag"]["cited_ids"]
        assert cited and f"[{cited[0]}]" in answered.choices[0].message.content  # auth off: no key needed


def port_free(port: int) -> bool:
    """Nothing listens on `port`: a new server could bind it (with SO_REUSEADDR, as uvicorn and streamlit do, so the
    TIME_WAIT entries of closed connections do not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def test_sigterm_lets_the_in_flight_answer_finish_then_serve_exits_0_and_frees_the_port(home, tmp_path) -> None:
    model = HeldModel()
    with OpenAIStub(model) as stub, serve_subprocess(stub_env(home, tmp_path, stub), [], tmp_path / "serve.log") as served:
        flight, out = in_thread(lambda: httpx.post(f"{served.url}/v1/ask", json={"question": "forklift operator"}, timeout=120))
        wait_admitted(served.url, 1)
        served.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while True:  # it stops accepting new connections first
            try:
                httpx.get(f"{served.url}/healthz", timeout=2)
            except httpx.TransportError:
                break
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.2)
        assert served.proc.poll() is None  # the answer in flight is still being written
        model.go.set()
        flight.join(120)
        assert out[0].status_code == 200 and out[0].json()["model_text"]
        assert served.proc.wait(60) == 0
        assert port_free(served.port)


def test_sigterm_to_jobrag_ui_leaves_no_streamlit_behind(tmp_path) -> None:
    pytest.importorskip("streamlit")
    port = free_port()
    env = serve_env(tmp_path / "home", tmp_path / "config")
    with (tmp_path / "ui.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "rag_app.cli", "ui", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.log").read_text()[-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)  # to the process the user started, not its group
        proc.wait(60)
        assert port_free(port)
        flag = f"--server.port\0{port}\0".encode()
        left = [p for p in os.listdir("/proc") if p.isdigit() and flag in _cmdline(p)]
        assert left == []
    finally:
        if proc.poll() is None:
            proc.kill()


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
