"""Compare-report files: per_query.csv, summary.json, summary.md, report.html (self-contained), manifest.json."""

from __future__ import annotations

import csv
import html
import json
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

from eval.runs import SUMMARY_KEYS, Run
from eval.stats import compare

DELTA_METRICS = ("ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100")
PER_QUERY_COLUMNS = ("first_rel_rank", "hit@1", "hit@3", "hit@10", "rr@10", "ndcg@10", "recall@10")


def deltas(runs: Sequence[Run], resamples: int, permutations: int, seed: int) -> list[dict[str, Any]]:
    """Every pair of retrievers (a listed before b) and every metric: b - a with CI, p-value and W/T/L."""
    out = []
    qids = sorted(set.intersection(*(set(r.per_query) for r in runs))) if runs else []
    for a, b in combinations(runs, 2):
        for metric in DELTA_METRICS:
            key = SUMMARY_KEYS[metric]
            xa = [a.per_query[q][key] or 0.0 for q in qids]
            xb = [b.per_query[q][key] or 0.0 for q in qids]
            out.append({"a": a.label, "b": b.label, "metric": metric, **compare(xa, xb, resamples, permutations, seed)})
    return out


def summary(runs: Sequence[Run], delta_rows: list[dict[str, Any]], n_queries: int, notes: list[str]) -> dict[str, Any]:
    return {"retrievers": {r.label: {"spec": r.spec, **r.summary()} for r in runs}, "deltas": delta_rows, "n_queries": n_queries, "notes": notes}


def write_per_query(path: Path, runs: Sequence[Run], queries: Mapping[str, str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = ["query_id", "query"]
        for r in runs:
            header += [f"{r.label}:{c}" for c in PER_QUERY_COLUMNS] + [f"{r.label}:top10"]
        writer.writerow(header)
        for qid, text in queries.items():
            row: list[Any] = [qid, text]
            for r in runs:
                m = r.per_query.get(qid, {})
                row += [m.get(c) for c in PER_QUERY_COLUMNS] + [" ".join(r.rankings.get(qid, [])[:10])]
            writer.writerow(row)


def markdown(data: dict[str, Any]) -> str:
    cols = ["ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100", "judged@10", "ms_per_query"]
    lines = [f"# Compare report ({data['n_queries']} queries)", "", "| retriever | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, m in data["retrievers"].items():
        lines.append(f"| {label} | " + " | ".join("–" if m.get(c) is None else f"{m[c]:.3f}" for c in cols) + " |")
    lines += ["", "| b vs a | metric | delta | 95 % CI | p | W/T/L |", "|---|---|---|---|---|---|"]
    for d in data["deltas"]:
        lines.append(f"| {d['b']} vs {d['a']} | {d['metric']} | {d['delta']:+.3f} | [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] | "
                     f"{d['p_value']:.4f} | {d['wins']}/{d['ties']}/{d['losses']} |")
    lines += [f"- {n}" for n in data.get("notes", [])]
    return "\n".join(lines) + "\n"


def _bars_svg(data: dict[str, Any], metric: str = "ndcg@10") -> str:
    """Bars of the metric per retriever with 95 % CI whiskers from a bootstrap of that retriever's own mean."""
    items = list(data["retrievers"].items())
    width, bar, gap = 120 * max(len(items), 1), 60, 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="240" role="img" aria-label="{metric} by retriever">']
    for i, (label, m) in enumerate(items):
        value, lo, hi = m.get(metric) or 0, *(m.get(f"{metric}_ci95") or [m.get(metric) or 0] * 2)
        x, y = 30 + i * (bar + gap), 200 - 180 * value
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{180 * value:.1f}" fill="#4c78a8"/>')
        parts.append(f'<line x1="{x + bar / 2}" x2="{x + bar / 2}" y1="{200 - 180 * hi:.1f}" y2="{200 - 180 * lo:.1f}" stroke="black"/>')
        parts.append(f'<text x="{x}" y="220" font-size="12">{html.escape(label)}</text><text x="{x}" y="{y - 4:.1f}" font-size="11">{value:.3f}</text>')
    return "".join(parts) + "</svg>"


def write_html(path: Path, data: dict[str, Any], md: str) -> None:
    rows = "".join(f"<tr><td>{html.escape(line)}</td></tr>" for line in md.splitlines())
    path.write_text(f"<!doctype html><meta charset='utf-8'><title>jobrag compare</title><h1>jobrag compare</h1>"
                    f"<h2>NDCG@10 with 95 % CI</h2>{_bars_svg(data)}<h2>Tables</h2><table>{rows}</table>"
                    f"<script type='application/json' id='summary'>{html.escape(json.dumps(data))}</script>", encoding="utf-8")


def write_report(out: Path, runs: Sequence[Run], queries: Mapping[str, str], notes: list[str], manifest: dict[str, Any],
                 resamples: int, permutations: int, seed: int) -> dict[str, Any]:
    from eval.stats import paired_bootstrap

    out.mkdir(parents=True, exist_ok=True)
    data = summary(runs, deltas(runs, resamples, permutations, seed), len(queries), notes)
    for r in runs:  # each retriever's own CI, for the chart whiskers
        values = [m["ndcg@10"] or 0.0 for m in r.per_query.values()]
        _, lo, hi = paired_bootstrap([0.0] * len(values), values, resamples, seed)
        data["retrievers"][r.label]["ndcg@10_ci95"] = [lo, hi]
    write_per_query(out / "per_query.csv", runs, queries)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    md = markdown(data)
    (out / "summary.md").write_text(md)
    write_html(out / "report.html", data, md)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return data
