"""`jobrag bench serve`: a bounded load generator against `jobrag serve` on loopback.

For each endpoint and each level of concurrent clients, that many httpx async clients send requests back to back until
the level's time or request budget runs out (it always stops by itself). Every request ends as ok (200), rejected (429
or 503: the server said "later", with Retry-After), an error (any other status) or lost (no response: a transport
error or the per-request timeout). Latency percentiles are over the ok requests; throughput is ok requests per second.

Without `--url` it starts its own `jobrag serve` subprocess on a free loopback port and stops it with SIGTERM after.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag_app.errors import ConfigError


@dataclass
class LevelResult:
    endpoint: str
    clients: int
    seconds: float = 0.0
    sent: int = 0
    ok: int = 0
    rejected: int = 0
    errors: int = 0
    lost: int = 0
    throughput: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    first_token_p50_ms: float | None = None  # /v1/ask when a model writes: the server-side time to its first token
    statuses: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        return asdict(self)


def payload(endpoint: str, text: str, retriever: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"query": text} if endpoint == "search" else {"question": text}
    return body | ({"retriever": retriever} if retriever else {})


async def run_level(base_url: str, endpoint: str, texts: list[str], clients: int, duration_s: float, max_requests: int,
                    timeout_s: float, headers: dict[str, str], retriever: str | None = None) -> LevelResult:
    import httpx

    result, latencies, statuses, first_tokens = LevelResult(endpoint, clients), [], Counter(), []
    loop = asyncio.get_running_loop()
    deadline, sent = loop.time() + duration_s, 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits, headers=headers) as client:

        async def worker() -> None:
            nonlocal sent
            while loop.time() < deadline and sent < max_requests:
                body = payload(endpoint, texts[sent % len(texts)], retriever)
                sent += 1
                started = time.perf_counter()
                try:
                    response = await client.post(f"/v1/{endpoint}", json=body)
                except httpx.HTTPError as exc:
                    statuses[exc.__class__.__name__] += 1
                    result.lost += 1
                    continue
                statuses[str(response.status_code)] += 1
                if response.status_code == 200:
                    latencies.append(1000 * (time.perf_counter() - started))
                    if endpoint == "ask" and "first_token_ms" in (timings := response.json().get("timings") or {}):
                        first_tokens.append(timings["first_token_ms"])
                elif response.status_code in (429, 503):
                    result.rejected += 1
                else:
                    result.errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        result.seconds = time.perf_counter() - started
    result.sent, result.ok, result.statuses = sent, len(latencies), dict(statuses)
    result.throughput = result.ok / result.seconds if result.seconds else 0.0
    if latencies:
        result.p50_ms, result.p95_ms, result.p99_ms = (float(np.percentile(latencies, q)) for q in (50, 95, 99))
    if first_tokens:
        result.first_token_p50_ms = float(np.median(first_tokens))
    return result


def run_bench(base_url: str, endpoints: dict[str, list[int]], texts: list[str], duration_s: float, max_requests: int, timeout_s: float,
              headers: dict[str, str], retriever: str | None = None, on_result: Any = None) -> list[LevelResult]:
    """Every (endpoint, clients) level in turn, after a short warm-up per endpoint."""
    import httpx

    results = []
    for endpoint, levels in endpoints.items():
        for text in texts[:3]:  # warm-up: first-use costs (question understanding, index pages) are not measured
            httpx.post(f"{base_url}/v1/{endpoint}", json=payload(endpoint, text, retriever), headers=headers, timeout=timeout_s)
        for clients in levels:
            result = asyncio.run(run_level(base_url, endpoint, texts, clients, duration_s, max_requests, timeout_s, headers, retriever))
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base_url: str, headers: dict[str, str], timeout_s: float, proc: subprocess.Popen | None = None) -> dict[str, Any]:
    """/readyz's body once it answers 200; a one-line ConfigError when the server died or the time ran out."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ConfigError(f"jobrag serve exited with code {proc.returncode} before it was ready")
        try:
            response = httpx.get(f"{base_url}/readyz", headers=headers, timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ConfigError(f"{base_url} was not ready within {timeout_s:.0f}s")


@dataclass
class Served:
    url: str
    port: int
    proc: subprocess.Popen


@contextmanager
def serve_subprocess(env: dict[str, str], args: list[str], log: Path, ready_timeout_s: float = 600) -> Iterator[Served]:
    """`jobrag serve` on a free loopback port under `env` (its whole environment), ready; SIGTERM (and a wait) when done,
    unless it has exited already."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rag_app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    served = Served(f"http://127.0.0.1:{port}", port, proc)
    try:
        try:
            wait_ready(served.url, {}, ready_timeout_s, proc)
        except ConfigError as exc:
            last = (log.read_text(errors="replace").strip().splitlines() or ["(no output)"])[-1]
            raise ConfigError(f"{exc}; its last log line: {last}") from None
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
