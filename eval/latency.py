"""Query latency for `jobrag bench query`: per-stage query latency on an ingested collection, against a brute-force bound.

Stages are the ones DenseRetriever runs: embed the query, search Chroma (HNSW), collapse chunks to listings. The
bound is exact numpy top-k (one matrix-vector product + argpartition) over the very same vectors, in the same run.
Generation is timed through the chat pipeline: time to first token and tokens/s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag_app.records import LISTING_ID, listing_id_of
from rag_app.retrievers import collapse
from rag_app.store import pages

DEFAULT_QUERIES = ["remote python data engineer", "night shift icu nurse", "part-time line cook weekends", "senior civil engineer PE licence",
                   "staff accountant cpa hybrid", "entry level customer support remote", "cdl-a truck driver home weekly",
                   "ux designer figma", "high school math teacher", "journeyman electrician $35 an hour"]


def load_queries(path: str | None, n: int) -> list[str]:
    if not path:
        return (DEFAULT_QUERIES * (n // len(DEFAULT_QUERIES) + 1))[:n]
    file = Path(path) / "queries.jsonl" if Path(path).is_dir() else Path(path)
    texts = [json.loads(line)["text"] for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts[:n]


def percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95))}


def _all_vectors(collection: Any) -> tuple[np.ndarray, list[dict]]:
    vectors, metas = [], []
    for page in pages(collection, ["embeddings", "metadatas"]):
        if page["ids"]:
            vectors.append(np.asarray(page["embeddings"], dtype=np.float32))
            metas += page["metadatas"]
    return np.concatenate(vectors), metas


def run_query_bench(embedder: Any, collection: Any, queries: list[str], candidate_k: int, top_k: int) -> dict[str, Any]:
    from llama_index.core.schema import NodeWithScore, TextNode

    matrix, metas = _all_vectors(collection)
    stages: dict[str, list[float]] = {"embed_query_ms": [], "search_ms": [], "collapse_ms": [], "dense_total_ms": [], "brute_force_search_ms": []}
    overlap = []
    embedder.get_query_embedding("warm-up")
    for q in queries:
        t0 = time.perf_counter()
        vec = np.asarray(embedder.get_query_embedding(q), dtype=np.float32)
        t1 = time.perf_counter()
        res = collection.query(query_embeddings=[vec.tolist()], n_results=candidate_k, include=["metadatas", "distances"])
        t2 = time.perf_counter()
        hits = [NodeWithScore(node=TextNode(id_=i, metadata=m), score=1 - d)
                for i, m, d in zip(res["ids"][0], res["metadatas"][0], res["distances"][0])]
        listings = collapse(hits, top_k)
        t3 = time.perf_counter()
        scores = matrix @ vec
        best = np.argpartition(-scores, min(candidate_k, len(scores) - 1))[:candidate_k]
        best = best[np.argsort(-scores[best])]
        t4 = time.perf_counter()
        exact_ids = {metas[i][LISTING_ID] for i in best}
        overlap.append(len({listing_id_of(h) for h in listings} & exact_ids) / max(len(listings), 1))
        for key, value in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t3 - t0, t4 - t3)):
            stages[key].append(1000 * value)
    figures = {f"{k} {p}": v for k, vals in stages.items() for p, v in percentiles(vals).items()}
    figures["search / brute-force (p50)"] = figures["search_ms p50"] / max(figures["brute_force_search_ms p50"], 1e-9)
    figures["dense_total / (embed + brute-force) (p50)"] = figures["dense_total_ms p50"] / max(
        figures["embed_query_ms p50"] + figures["brute_force_search_ms p50"] + figures["collapse_ms p50"], 1e-9)
    figures["HNSW top-k agreement with exact"] = float(np.mean(overlap))
    return {"chunks": int(matrix.shape[0]), "listings": len({m[LISTING_ID] for m in metas}), "queries": len(queries), "figures": figures}


def run_generation_bench(engine: Any, questions: list[str]) -> dict[str, float]:
    first, rate = [], []
    for q in questions:
        answer = engine.ask(q)
        if "first_token_ms" in answer.timings:
            first.append(answer.timings["first_token_ms"])
            rate.append(answer.timings["tokens_per_s"])
    if not first:
        return {}
    return {"first_token_ms p50": float(np.median(first)), "tokens_per_s p50": float(np.median(rate))}


def run_backend_query_bench(embedding: Any, backends: list[str], queries: list[str]) -> dict[str, Any]:
    """Query-embedding latency of each backend, query by query, alternating which backend goes first."""
    from rag_app.backend_bench import footprints, interleaved, load_backends, memory_figures, ratios

    embedders = load_backends(embedding, backends)
    for embedder in embedders.values():
        embedder.get_query_embedding("warm-up")
    seconds = interleaved({b: (lambda r, e=e: e.get_query_embedding(queries[r])) for b, e in embedders.items()}, len(queries))
    figures: dict[str, Any] = {}
    for b, secs in seconds.items():
        figures |= {f"{b} embed_query_ms {p}": v for p, v in percentiles([1000 * s for s in secs]).items()}
    first = backends[0]
    for b in backends[1:]:
        figures[f"{b} p50 speed vs {first}"] = f"{figures[f'{first} embed_query_ms p50'] / figures[f'{b} embed_query_ms p50']:.2f}x"
    figures |= ratios(seconds)
    for b, mem in footprints(embedding, backends, queries[:8]).items():
        figures |= {f"{b} {k}": v for k, v in memory_figures(mem).items()}
    return {"queries": len(queries), "figures": figures}
