"""2-D projections of query and listing embeddings per dense model, for the compare report (PCA in numpy).

For a readable picture, only a sample is drawn: up to `max_queries` queries (in query-set order), their relevant
listings and each query's top retrieved listings. Queries and listings are projected together onto the first two
principal components of the combined (normalised) vectors, so distances in the picture mirror the model's space.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def pca_2d(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """Rows of `x` on its first two principal components, and the share of variance each explains."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        return np.zeros((0, 2)), [0.0, 0.0]
    centred = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    comps = vt[:2]
    if comps.shape[0] < 2:
        comps = np.vstack([comps, np.zeros((2 - comps.shape[0], x.shape[1]))])
    # deterministic sign: the largest-magnitude loading of each component is positive
    signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
    comps = comps * np.where(signs == 0, 1, signs)[:, None]
    var = s**2
    share = [float(v / var.sum()) if var.sum() > 0 else 0.0 for v in (list(var[:2]) + [0.0, 0.0])[:2]]
    return centred @ comps.T, share


def projection(label: str, model: str, embedder: Any, queries: Mapping[str, str], corpus: Mapping[str, str],
               rankings: Mapping[str, Sequence[str]], relevant: Mapping[str, Sequence[str]], max_queries: int = 40,
               top: int = 3) -> dict[str, Any]:
    """Points for one dense retriever: kind (query | relevant | retrieved), id, short text, x, y."""
    qids = [q for q in queries if q in rankings][:max_queries]
    docs: dict[str, str] = {}
    for q in qids:
        for d in relevant.get(q, []):
            if d in corpus:
                docs.setdefault(d, "relevant")
        for d in rankings[q][:top]:
            if d in corpus:
                docs.setdefault(d, "retrieved")
    if not qids:
        return {"label": label, "model": model, "points": [], "variance": [0.0, 0.0]}
    q_vecs = np.asarray([embedder.get_query_embedding(queries[q]) for q in qids], dtype=np.float64)
    d_ids = list(docs)
    d_vecs = np.asarray(embedder.get_text_embedding_batch([corpus[d] for d in d_ids]), dtype=np.float64) if d_ids else np.zeros((0, q_vecs.shape[1]))
    allv = np.vstack([q_vecs, d_vecs])
    allv /= np.linalg.norm(allv, axis=1, keepdims=True).clip(min=1e-12)
    xy, share = pca_2d(allv)
    points = [{"kind": "query", "id": q, "text": queries[q][:120], "x": float(xy[i, 0]), "y": float(xy[i, 1]),
               "relevant": list(relevant.get(q, []))} for i, q in enumerate(qids)]
    points += [{"kind": docs[d], "id": d, "text": corpus[d][:120], "x": float(xy[len(qids) + i, 0]), "y": float(xy[len(qids) + i, 1])}
               for i, d in enumerate(d_ids)]
    return {"label": label, "model": model, "points": points, "variance": share}
