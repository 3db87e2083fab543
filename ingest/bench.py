"""`jobrag bench ingest`: ingestion throughput and encoder efficiency against a matmul peak measured in the same run.

Encoder FLOPs are counted analytically for a BERT-style encoder per sequence of n word pieces:
L * (8 n d^2 + 4 n d f + 4 n^2 d) (Q/K/V/O projections, feed-forward, attention scores and mixing), for real tokens
and for the padded batches sentence-transformers actually runs (it sorts a call's texts by length, then pads each
batch to its longest member).

`--backends torch,onnx-int8` instead compares embedding backends on the same chunks (run_backend_bench): throughput,
ratio, agreement (cosine) and memory, each batch encoded by every backend in alternating order.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from ingest.pipeline import Chunker, Ingestor, read_listings
from rag_app.embeddings import build_embedder
from rag_app.model_paths import display_name
from rag_app.settings import Settings
from rag_app.store import Store

logger = logging.getLogger(__name__)


def encoder_flops(n_tokens: int, layers: int, hidden: int, ffn: int) -> float:
    return layers * (8 * n_tokens * hidden**2 + 4 * n_tokens * hidden * ffn + 4 * n_tokens**2 * hidden)


def padded_lengths(counts: list[int], batch_size: int) -> list[int]:
    """Lengths after padding each batch of the length-sorted texts to its longest member."""
    ordered = sorted(counts, reverse=True)
    return [ordered[i] for i in range(0, len(ordered), batch_size) for _ in ordered[i:i + batch_size]]


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GEMM rate torch reaches here with its current thread count."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


def run_ingest_bench(settings: Settings, source: str, limit: int | None) -> dict[str, Any]:
    import torch

    read = read_listings(source, settings, limit)
    embedder = build_embedder(settings.embedding)
    with tempfile.TemporaryDirectory(prefix="jobrag-bench-") as tmp:
        bench_settings = settings.model_copy(update={"home": Path(tmp), "store": settings.store.model_copy(update={"mode": "persistent", "path": None})})
        ingestor = Ingestor(bench_settings, embedder, Store.from_settings(bench_settings))
        ingestor.count_tokens = True
        embedder.encode_documents(["warm-up text for the encoder"] * 4)
        summary = ingestor.run(read, progress=True)
    peak = matmul_peak_gflops()
    times, batches = ingestor.times.seconds, ingestor.times.token_batches
    tokens = sum(map(sum, batches))
    figures: dict[str, Any] = {
        "listings": summary.added + summary.updated, "chunks": summary.chunks_written, "seconds_total": summary.seconds,
        "listings_per_s": (summary.added + summary.updated) / summary.seconds, "chunks_per_s": summary.chunks_written / summary.seconds,
        "embedded_tokens_per_s": tokens / summary.seconds, "encoder_tokens_per_s": tokens / max(times["embed"], 1e-9),
        **{f"seconds_{k}": v for k, v in times.items()},
        "mean_tokens_per_chunk": tokens / max(sum(map(len, batches)), 1), "matmul_peak_gflops": peak,
    }
    notes = []
    model = embedder.torch_model
    if model is not None:
        cfg = model[0].auto_model.config
        dims = (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)
        real = sum(encoder_flops(n, *dims) for b in batches for n in b)
        padded = sum(encoder_flops(n, *dims) for b in batches for n in padded_lengths(b, settings.embedding.batch_size))
        figures |= {"encoder_gflops_real": real / times["embed"] / 1e9, "encoder_gflops_padded": padded / times["embed"] / 1e9,
                    "pct_of_peak_real": 100 * real / times["embed"] / 1e9 / peak, "pct_of_peak_padded": 100 * padded / times["embed"] / 1e9 / peak,
                    "padding_overhead_pct": 100 * (padded / real - 1)}
        notes.append(f"encoder {dims[0]} layers, d={dims[1]}, ffn={dims[2]}; torch threads={torch.get_num_threads()}, batch={settings.embedding.batch_size}")
    share = {k: 100 * v / summary.seconds for k, v in times.items()}
    notes.append("time share: " + ", ".join(f"{k} {v:.0f}%" for k, v in share.items()) + f", other {100 - sum(share.values()):.0f}%")
    return {"source": source, "model": display_name(settings.embedding.model), "figures": figures, "notes": notes}


def run_backend_bench(settings: Settings, source: str, limit: int | None, backends: list[str]) -> dict[str, Any]:
    """Encoder throughput of each backend on this source's chunks, batch by batch as ingest embeds them, alternating which
    backend goes first; vectors are compared with the first backend's (cosine), memory measured in child processes."""
    import numpy as np
    from llama_index.core.schema import MetadataMode

    from rag_app.backend_bench import footprints, interleaved, load_backends, memory_figures, ratios

    read = read_listings(source, settings, limit)
    embedders = load_backends(settings.embedding, backends)
    first = embedders[backends[0]]
    chunker = Chunker(Store.facts_for(first, settings.ingest)["chunk_size"], settings.ingest.chunk_overlap, first.tokenizer(),
                      settings.ingest.max_chunks)
    step = settings.ingest.batch_listings
    batches = [[n.get_content(metadata_mode=MetadataMode.EMBED) for x in read.listings[i:i + step] for n in chunker(x)]
               for i in range(0, len(read.listings), step)]
    for embedder in embedders.values():
        embedder.encode_documents(["warm-up text for the encoder"] * 4)
    vectors: dict[str, list[Any]] = {b: [] for b in backends}
    calls = {b: (lambda r, e=e, out=vectors[b]: out.append(e.encode_documents(batches[r]))) for b, e in embedders.items()}
    seconds = interleaved(calls, len(batches))
    chunks = sum(map(len, batches))
    tokens = sum(first.count_tokens([t for b in batches for t in b]))
    figures: dict[str, Any] = {"listings": len(read.listings), "chunks": chunks, "batches": len(batches), "mean_tokens_per_chunk": tokens / max(chunks, 1)}
    reference = np.concatenate(vectors[backends[0]])
    for b in backends:
        figures |= {f"{b} chunks_per_s": chunks / sum(seconds[b]), f"{b} encoder_tokens_per_s": tokens / sum(seconds[b]),
                    f"{b} seconds_embed": sum(seconds[b])}
        if b != backends[0]:
            cosine = (np.concatenate(vectors[b]) * reference).sum(1)
            figures |= {f"{b} cosine to {backends[0]} mean / p1 / min": f"{cosine.mean():.4f} / {np.percentile(cosine, 1):.4f} / {cosine.min():.4f}"}
    figures |= ratios(seconds)
    for b, mem in footprints(settings.embedding, backends, batches[0][: settings.embedding.batch_size]).items():
        figures |= {f"{b} {k}": v for k, v in memory_figures(mem).items()}
    import torch

    notes = [f"threads: torch {torch.get_num_threads()}, onnx {settings.embedding.onnx_threads or 'one per core'}; batch {settings.embedding.batch_size}; "
             f"max_chunks {settings.ingest.max_chunks}; rounds alternate which backend goes first",
             "memory (MB): what a fresh process's RSS gains over its imported libraries by loading the model, after encoding one batch "
             "(free heap trimmed), and at the peak (sampled)"]
    return {"source": source, "model": display_name(settings.embedding.model), "figures": figures, "notes": notes}
