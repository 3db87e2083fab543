"""The table rows summary.md (eval.report) and report.html (eval.report_html) both show: one definition of each cell."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from eval.runs import ORACLE_SPEC
from eval.segments import detail_table, pivot_table, segment_delta_rows

RETRIEVAL_COLUMNS = ["ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100", "judged@10", "ndcg@10_condensed", "ms_per_query",
                     "model_size_mb"]
DELTA_HEADERS = ["b vs a", "metric", "delta", "95 % CI", "p", "W/T/L", "n"]


def fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def retriever_cells(m: Mapping[str, Any]) -> list[str]:
    return [fmt(m.get(c)) for c in RETRIEVAL_COLUMNS]


def answer_cells(per: Mapping[str, Mapping[str, Any]], ran: Sequence[str]) -> list[str]:
    """'mean (n=scored[, k failed])' per answer metric."""
    return [f"{fmt(per[m]['mean'])} (n={per[m]['n']}" + (f", {per[m]['failed']} failed)" if per[m]["failed"] else ")") for m in ran]


def delta_cells(d: Mapping[str, Any]) -> list[Any]:
    return [f"{d['b']} vs {d['a']}", d["metric"], fmt(d["delta"], True), f"[{fmt(d['ci95'][0], True)}, {fmt(d['ci95'][1], True)}]",
            fmt(d["p_value"]), f"{d['wins']}/{d['ties']}/{d['losses']}", d.get("n", "–")]


def oracle_cells(oracle: Mapping[str, Any]) -> list[str]:
    return [ORACLE_SPEC, *retriever_cells(oracle)]


def oracle_line(oracle: Mapping[str, Any]) -> str:
    h = oracle["headroom"]
    return (f"The oracle takes, per query, the best value any of {', '.join(oracle['of'])} reached on each metric: NDCG@10 "
            f"{fmt(oracle['ndcg@10'])} [{fmt(oracle['ndcg@10_ci95'][0])}, {fmt(oracle['ndcg@10_ci95'][1])}], {fmt(h['delta'], True)} over "
            f"the best single retriever ({h['best_retriever']}): the headroom for a fusion or router that picked the right retriever per query.")


def segment_tables(name: str, segments: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, headers, rows) of a segment field's three tables: NDCG@10 with CI by segment, every metric, the paired deltas."""
    pivot, detail = pivot_table(segments), detail_table(segments)
    return [(f"NDCG@10 by {name} (mean [95 % CI])", *pivot), (f"Every metric by {name}", *detail),
            (f"Paired deltas by {name} (b − a)", [name, *DELTA_HEADERS], [[d["segment"], *delta_cells(d)] for d in segment_delta_rows(segments)])]
