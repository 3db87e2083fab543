"""Metrics by query segment: where does each retriever win or lose (dev_a's `style`, or any field of the queries)?

For every segment field and value: n, each retriever's mean and 95 % bootstrap CI of every summary metric over that
segment's queries, the oracle's (per-query best) means, and the paired NDCG@10 delta (b − a) of every pair with its
CI, p-value and W/T/L (NDCG@10 condensed too, with pooled judgments) — summary.json's `segments`. A query without the field falls in the `(none)` segment, so the
segments of a field always add up to the report's queries. The table rows shown by summary.md and report.html are here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eval.runs import ORACLE_SPEC, SUMMARY_KEYS, Run, common_qids, deltas
from eval.stats import bootstrap_ci

MISSING = "(none)"
TABLE_METRICS = ("ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100")  # the detail table's columns (JSON has all)


def segment_means(run: Run, qids: Sequence[str], resamples: int, seed: int) -> dict[str, Any]:
    """Mean and 95 % bootstrap CI of every summary metric (and NDCG@10 condensed, with pooled judgments) over `qids`."""
    names = dict(SUMMARY_KEYS)
    if qids and all("ndcg@10_condensed" in run.per_query[q] for q in qids):
        names["ndcg@10_condensed"] = "ndcg@10_condensed"
    out: dict[str, Any] = {}
    for name, key in names.items():
        mean, lo, hi = bootstrap_ci([v for q in qids if (v := run.per_query[q].get(key)) is not None], resamples, seed)
        out[name], out[f"{name}_ci95"] = mean, [lo, hi]
    return out


def segment_report(runs: Sequence[Run], oracle: Run | None, fields: Mapping[str, Mapping[str, str]], resamples: int,
                   permutations: int, seed: int) -> dict[str, dict[str, dict[str, Any]]]:
    """{FIELD: {VALUE: {"n", "retrievers": {LABEL: {metric, metric_ci95, …}}, "oracle": {…} | None, "deltas": [NDCG@10 (+ condensed) pairs]}}}."""
    qids = common_qids(runs)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, value_of in fields.items():
        groups: dict[str, list[str]] = {}
        for q in qids:
            groups.setdefault(value_of.get(q, MISSING), []).append(q)
        out[name] = {value: {"n": len(members),
                             "retrievers": {r.label: segment_means(r, members, resamples, seed) for r in runs},
                             "oracle": segment_means(oracle, members, resamples, seed) if oracle is not None else None,
                             "deltas": deltas(runs, resamples, permutations, seed, qids=members, metrics=("ndcg@10",))}
                     for value, members in sorted(groups.items(), key=lambda kv: (kv[0] == MISSING, kv[0]))}
    return out


# -- table rows shown by summary.md and report.html ------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def with_ci(m: Mapping[str, Any], metric: str) -> str:
    ci = m.get(f"{metric}_ci95") or [None, None]
    return f"{_fmt(m.get(metric))} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci[0] is not None else _fmt(m.get(metric))


def _rows(segments: Mapping[str, Mapping[str, Any]]):
    """(segment, n, label, means) for every retriever and then the oracle of each segment."""
    for value, seg in segments.items():
        for label, m in seg["retrievers"].items():
            yield value, seg["n"], label, m
        if seg.get("oracle"):
            yield value, seg["n"], ORACLE_SPEC, seg["oracle"]


def pivot_table(segments: Mapping[str, Mapping[str, Any]], metric: str = "ndcg@10") -> tuple[list[str], list[list[Any]]]:
    """One row per segment: n, then `metric` mean [95 % CI] of each retriever and of the oracle."""
    first = next(iter(segments.values()))
    labels = list(first["retrievers"])
    oracle = ["oracle"] if first.get("oracle") else []
    rows = [[value, seg["n"], *(with_ci(seg["retrievers"][label], metric) for label in labels),
             *([with_ci(seg["oracle"], metric)] if oracle else [])] for value, seg in segments.items()]
    return ["segment", "n", *labels, *oracle], rows


def detail_table(segments: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """One row per segment and retriever (oracle last): every table metric's mean."""
    return (["segment", "n", "retriever", *TABLE_METRICS],
            [[value, n, label, *(_fmt(m.get(c)) for c in TABLE_METRICS)] for value, n, label, m in _rows(segments)])


def segment_delta_rows(segments: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The segments' deltas, each with its segment."""
    return [{**d, "segment": value} for value, seg in segments.items() for d in seg["deltas"]]
