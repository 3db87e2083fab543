"""Comparing embedding backends fairly (`jobrag bench ingest|query --backends torch,onnx-int8`).

Both backends run in one process, on the same inputs, alternately (A then B, then B then A, ...), so machine noise
(other jobs on shared cores) hits both; ratios are taken per round as well as over the totals. Memory is measured in
a fresh child process per backend, which is the only clean way: what loading the model adds to the RSS of a process
that has imported the libraries, what it holds after encoding one batch, and the peak of both.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rag_app.errors import ConfigError
from rag_app.settings import EMBEDDING_BACKENDS

if TYPE_CHECKING:
    from rag_app.embeddings import Embedder
    from rag_app.settings import EmbeddingSettings


def parse_backends(text: str) -> list[str]:
    backends = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in backends if b not in EMBEDDING_BACKENDS]
    if unknown or len(set(backends)) != len(backends) or not backends:
        raise ConfigError(f"--backends {text!r}: give distinct names from {', '.join(EMBEDDING_BACKENDS)}, e.g. torch,onnx-int8")
    return backends


def load_backends(embedding: EmbeddingSettings, backends: list[str]) -> dict[str, Embedder]:
    """One embedder per backend (an onnx backend builds its export here if it has none yet)."""
    from rag_app.embeddings import build_embedder

    return {b: build_embedder(embedding.model_copy(update={"backend": b})) for b in backends}


def interleaved(calls: dict[str, Callable[[int], Any]], rounds: int) -> dict[str, list[float]]:
    """Seconds of `call(round)` per round for each call, alternating which goes first."""
    names = list(calls)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            calls[name](r)
            seconds[name].append(time.perf_counter() - started)
    return seconds


def ratios(seconds: dict[str, list[float]], work: list[float] | None = None) -> dict[str, str]:
    """Speed of each backend against the first: over the totals and as the median of the per-round ratios."""
    import statistics

    first, *others = seconds
    out = {}
    for name in others:
        per_round = [a / b for a, b in zip(seconds[first], seconds[name]) if b > 0]
        out[f"{name} speed vs {first}"] = (f"{sum(seconds[first]) / sum(seconds[name]):.2f}x totals, "
                                           f"{statistics.median(per_round):.2f}x median of {len(per_round)} rounds")
    return out


def _footprint(embedding_json: str, texts: list[str], queue: Any) -> None:
    """Child process: RSS (MB) the model adds over the imported libraries after loading, after encoding `texts` (free heap
    returned to the OS), and at the peak of both (sampled every 5 ms)."""
    import threading

    import onnxruntime  # noqa: F401  (the libraries both backends load are imported before the baseline)
    import psutil

    import rag_app.st_embedder  # noqa: F401  (torch, transformers, sentence-transformers, llama-index)
    from rag_app.embeddings import build_embedder
    from rag_app.settings import EmbeddingSettings

    process = psutil.Process()
    base = peak = process.memory_info().rss
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    embedder = build_embedder(EmbeddingSettings.model_validate_json(embedding_json))
    loaded = process.memory_info().rss
    embedder.encode_documents(texts)
    _release_free_heap()
    encoded = process.memory_info().rss
    done.set()
    sampler.join()
    queue.put({"rss_load_mb": (loaded - base) / 2**20, "rss_encode_mb": (encoded - base) / 2**20, "rss_peak_mb": (max(peak, encoded) - base) / 2**20})


def _release_free_heap() -> None:
    """glibc keeps freed large blocks on the heap (its mmap threshold adapts), which makes RSS after work depend on the
    allocator's history; trimming first leaves what the model really holds. No-op elsewhere."""
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def footprints(embedding: EmbeddingSettings, backends: list[str], texts: list[str]) -> dict[str, dict[str, float]]:
    """Memory each backend adds to a process that has already imported the libraries (run after `load_backends`)."""
    context = multiprocessing.get_context("spawn")
    out = {}
    for backend in backends:
        queue = context.Queue()
        child = context.Process(target=_footprint, args=(embedding.model_copy(update={"backend": backend}).model_dump_json(), texts, queue))
        child.start()
        out[backend] = queue.get(timeout=600)
        child.join()
    return out


def memory_figures(mem: dict[str, float]) -> dict[str, str]:
    return {"rss_mb load / after encode / peak": f"{mem['rss_load_mb']:.0f} / {mem['rss_encode_mb']:.0f} / {mem['rss_peak_mb']:.0f}"}
