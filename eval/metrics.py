"""Per-query retrieval metrics on graded qrels.

NDCG uses graded gains (gain = grade, log2 discount; the ideal ranking is built from every judged grade of the
query). Every other metric counts a document as relevant when its grade is >= 1. MAP@k divides by min(k, #relevant),
MRR@k is the reciprocal rank of the first relevant document within k (0 past k) — the conventions of
sentence-transformers' InformationRetrievalEvaluator, against which tests cross-check these numbers.

With pooled judgments (a `judgments_all.tsv` listing every judged pair, grade 0 included) two more columns say how
far the pool can be trusted for a system that was not pooled: `judged@10`, the share of the top 10 that was judged,
and `ndcg@10_condensed`, NDCG@10 over the ranking with unjudged documents removed (Sakai's condensed lists, SIGIR 2007).
Standard NDCG counts an unjudged document as non-relevant, a lower bound for a new system; the condensed figure drops
them instead, the usual correction when Judged@10 is well below 1. Report both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

METRICS = ("first_rel_rank", "hit@1", "hit@3", "hit@10", "rr@10", "ndcg@10", "recall@10", "recall@100", "map@100")


def rank_ids(scores: Mapping[str, float]) -> list[str]:
    """Documents by score, best first; ties broken by id so equal scores rank the same way on every run."""
    return sorted(scores, key=lambda d: (-scores[d], d))


def ndcg_at(ranking: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranking[:k]))
    ideal = sorted((g for g in grades.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def average_precision_at(ranking: Sequence[str], relevant: set[str], k: int = 100) -> float:
    hits, total = 0, 0.0
    for i, doc in enumerate(ranking[:k], start=1):
        if doc in relevant:
            hits += 1
            total += hits / i
    return total / min(k, len(relevant)) if relevant else 0.0


def query_metrics(ranking: Sequence[str], grades: Mapping[str, int], judged: set[str] | None = None) -> dict[str, float | None]:
    """All metrics of one query. `judged` (every judged doc, grade 0 included) adds judged@10 and ndcg@10_condensed."""
    relevant = {d for d, g in grades.items() if g >= 1}
    first = next((i for i, doc in enumerate(ranking, start=1) if doc in relevant), None)
    out: dict[str, float | None] = {"first_rel_rank": float(first) if first else None}
    for k in (1, 3, 10):
        out[f"hit@{k}"] = 1.0 if first is not None and first <= k else 0.0
    out["rr@10"] = 1.0 / first if first is not None and first <= 10 else 0.0
    out["ndcg@10"] = ndcg_at(ranking, grades, 10)
    for k in (10, 100):
        out[f"recall@{k}"] = len(relevant & set(ranking[:k])) / len(relevant) if relevant else 0.0
    out["map@100"] = average_precision_at(ranking, relevant, 100)
    if judged is not None:
        top = ranking[:10]
        out["judged@10"] = sum(doc in judged for doc in top) / len(top) if top else 0.0
        out["ndcg@10_condensed"] = ndcg_at([doc for doc in ranking if doc in judged], grades, 10)
    return out


def mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else float("nan")
