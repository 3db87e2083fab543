"""Real `jobrag serve` processes for tests: an environment that reads no developer settings, and an SSE reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO


def serve_env(home: Path, config_dir: Path, **settings: str) -> dict[str, str]:
    """The whole environment of a jobrag subprocess: this checkout's code, `home`, no settings.yaml, and `settings` as
    JOBRAG_* variables (`llm__mode="none"` -> JOBRAG_LLM__MODE=none)."""
    config_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBRAG_")}
    env |= {"JOBRAG_HOME": str(home), "JOBRAG_CONFIG_DIR": str(config_dir), "HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False",
            "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    return env | {f"JOBRAG_{key.upper()}": value for key, value in settings.items()}


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name or None, data) for each server-sent event in a response body."""
    events = []
    for block in text.strip().split("\n\n"):
        name = next((line[7:] for line in block.splitlines() if line.startswith("event: ")), None)
        data = "\n".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        events.append((name, data))
    return events


def sse_json(text: str) -> list[tuple[str | None, object]]:
    return [(name, data if data == "[DONE]" else json.loads(data)) for name, data in sse_events(text)]


@contextmanager
def chroma_server(root: Path) -> Iterator[int]:
    """A real Chroma server (`chroma run`) on a free loopback port, its data and log under `root`; yields the port."""
    from rag_app.server.bench import free_port

    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    with (root / "chroma.log").open("w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(root / "db"), "--host", "127.0.0.1",
                                 "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2)
                break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (root / "chroma.log").read_text()[-2000:]
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def machine(root: Path, name: str, port: int, **settings: str) -> dict[str, str]:
    """The environment of one machine: its own home, the shared Chroma server."""
    return serve_env(root / name / "home", root / name / "config", store__mode="http", store__port=str(port), llm__mode="none", **settings)


def cli(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "rag_app.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def done(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return out


def ids_found(url: str, query: str, retriever: str) -> list[str]:
    import httpx

    response = httpx.post(f"{url}/v1/search", json={"query": query, "retriever": retriever, "k": 5}, timeout=300)
    assert response.status_code == 200, response.text
    return [s["id"] for s in response.json()["sources"]]
