"""Tune the hybrid fusion of a trained model on its own val split, without Chroma, and write `fusion.json` beside it.

The val split (queries, corpus, relevant docs) is held in memory: the corpus is encoded with the trained model (dense
scores as the dense retriever reports them, `rag_app.fusion.dense_score` of the cosine) and indexed with the same bm25s
setup as the serving BM25 index (llama-index's BM25Retriever, English stemming and stopwords). Each query's two lists are
cut at `candidate_k` listings (`retrieval.fusion_depth`, the convex range depth), fused by `rag_app.fusion.Fusion.rank` (the hybrid retriever's own code) for every
candidate weight of both methods, and scored with sentence-transformers' InformationRetrievalEvaluator (the val metric
`jobrag finetune` reports). The best (method, weight) is recommended; ties go to rrf, then to the weight nearest 0.5.

An approximation, said plainly: the split's documents are whole listings (header + description), where the serving
dense index scores a listing by its best chunk; with one chunk per listing (`ingest.max_chunks: 1`) they agree.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from rag_app.fusion import Fusion, FusionChoice, Ranking, dense_score, with_weight
from rag_app.records import IRSplit
from rag_app.settings import FUSION_MODES

logger = logging.getLogger(__name__)
GRID = tuple(round(0.1 * i, 1) for i in range(11))  # convex alpha / rrf dense weight (BM25 weight 1 - it)
METRIC = "ndcg@10"


def candidate_lists(model: Any, split: IRSplit, qids: list[str], candidate_k: int, batch_size: int = 32) -> tuple[list[Ranking], list[Ranking]]:
    """Per query (in `qids` order): the dense and the BM25 candidate lists over the split's corpus, best first."""
    import numpy as np
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    doc_ids = list(split.corpus)
    texts = [split.corpus[d] for d in doc_ids]
    queries = [split.queries[q] for q in qids]
    k = min(candidate_k, len(doc_ids))
    q = model.encode(queries, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    d = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=len(texts) > 2000)
    cosines = q @ d.T
    top = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
    dense = [[(doc_ids[j], dense_score(float(cosines[i, j]))) for j in row] for i, row in enumerate(top)]
    bm25 = BM25Retriever.from_defaults(nodes=[TextNode(id_=i, text=t) for i, t in zip(doc_ids, texts)], similarity_top_k=k, language="english")
    lexical = [[(h.node.node_id, float(h.score)) for h in bm25.retrieve(text) if (h.score or 0) > 0] for text in queries]  # as BM25ListingRetriever
    return dense, lexical


def tune(model: Any, split: IRSplit, candidate_k: int = 50, rrf_k: int = 60, grid: tuple[float, ...] = GRID,
         split_info: dict[str, Any] | None = None) -> FusionChoice:
    """Val NDCG@10 of every (method, weight) on `split`; the best one as a FusionChoice."""
    from finetune.train import ir_evaluator

    started = time.perf_counter()
    evaluator = ir_evaluator(split, "val")
    qids = list(evaluator.queries_ids)
    dense, lexical = candidate_lists(model, split, qids, candidate_k)
    top_k = max(evaluator.ndcg_at_k)
    candidates: dict[str, dict[str, float]] = {}
    for method in FUSION_MODES:
        base = Fusion(method, rrf_k=rrf_k, depth=candidate_k)
        candidates[method] = {}
        for weight in grid:
            fusion = with_weight(base, weight)
            # the fused order itself, as rank scores: the evaluator's own tie-break (by corpus id) must not reorder it
            results = [[{"corpus_id": lid, "score": -float(rank)} for rank, (lid, _) in enumerate(fusion.rank(dl, bl, top_k))]
                       for dl, bl in zip(dense, lexical)]
            candidates[method][f"{weight:g}"] = float(evaluator.compute_metrics(results)["ndcg@k"][10])
    method, weight = max(((m, float(w)) for m in FUSION_MODES for w in candidates[m]),
                         key=lambda mw: (candidates[mw[0]][f"{mw[1]:g}"], mw[0] == "rrf", -abs(mw[1] - 0.5)))
    best = with_weight(Fusion(method, rrf_k=rrf_k, depth=candidate_k), weight)
    info = {"queries": len(qids), "corpus": len(split.corpus), **(split_info or {})}
    choice = FusionChoice(method=best.method, alpha=best.alpha, dense_weight=best.dense_weight, bm25_weight=best.bm25_weight, rrf_k=rrf_k,
                          metric=f"val {METRIC}", value=candidates[method][f"{weight:g}"], candidates=candidates, candidate_k=candidate_k,
                          split=info, seconds=round(time.perf_counter() - started, 2))
    logger.info("fusion tuned on %d val queries: %s (val %s %.4f)", len(qids), best.label(), METRIC, choice.value)
    return choice


def tune_saved(model_dir: Path, split: IRSplit, candidate_k: int, rrf_k: int, split_info: dict[str, Any] | None = None,
               device: str | None = None) -> FusionChoice:
    """Load the model saved in `model_dir` (exactly what serving loads), tune on `split`, write `model_dir/fusion.json`."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device=device)
    choice = tune(model, split, candidate_k, rrf_k, split_info=split_info)
    choice.write(model_dir)
    return choice
