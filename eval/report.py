"""Compare-report files: per_query.csv, summary.json, summary.md, report.html (self-contained), manifest.json."""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.runs import OPTIONAL_KEYS, SUMMARY_KEYS, Run
from eval.stats import compare

if TYPE_CHECKING:
    from eval.answers import AnswerEval

DELTA_METRICS = ("ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100")
PER_QUERY_COLUMNS = ("first_rel_rank", "hit@1", "hit@3", "hit@10", "rr@10", "ndcg@10", "recall@10")
PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")


def deltas(runs: Sequence[Run], resamples: int, permutations: int, seed: int) -> list[dict[str, Any]]:
    """Every pair of retrievers (a listed before b) and every metric: b - a with CI, p-value and W/T/L."""
    out = []
    qids = sorted(set.intersection(*(set(r.per_query) for r in runs))) if runs else []
    for a, b in combinations(runs, 2):
        optional = [m for m in ("ndcg@10_condensed",) if all(m in a.per_query[q] and m in b.per_query[q] for q in qids)] if qids else []
        for metric in (*DELTA_METRICS, *optional):
            key = SUMMARY_KEYS.get(metric, metric)
            xa = [a.per_query[q][key] or 0.0 for q in qids]
            xb = [b.per_query[q][key] or 0.0 for q in qids]
            out.append({"a": a.label, "b": b.label, "metric": metric, **compare(xa, xb, resamples, permutations, seed), "n": len(qids)})
    return out


def answer_deltas(answers: AnswerEval, labels: Sequence[str], resamples: int, permutations: int, seed: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Answer metrics, paired over the queries both retrievers' rows were scored on (n says how many)."""
    out, notes = [], []
    for a, b in combinations(labels, 2):
        for metric in answers.ran:
            ra, rb = answers.rows.get(a, {}), answers.rows.get(b, {})
            qids = sorted(q for q in set(ra) & set(rb) if ra[q].scores.get(metric) is not None and rb[q].scores.get(metric) is not None)
            if len(qids) < 2:
                notes.append(f"{b} vs {a}: {metric} has {len(qids)} paired scored rows; no delta")
                continue
            xa = [ra[q].scores[metric] for q in qids]
            xb = [rb[q].scores[metric] for q in qids]
            out.append({"a": a, "b": b, "metric": metric, **compare(xa, xb, resamples, permutations, seed), "n": len(qids)})
    return out, notes


def _clean(value: Any) -> Any:
    """NaN/inf -> None, recursively: summary.json stays valid JSON and a missing mean is never a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def summary(runs: Sequence[Run], delta_rows: list[dict[str, Any]], n_queries: int, notes: list[str],
            answers: AnswerEval | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"retrievers": {r.label: {"spec": r.spec, **r.summary()} for r in runs}, "deltas": delta_rows,
                            "n_queries": n_queries, "notes": notes}
    if answers is not None:
        data["answers"] = answers.to_json()
        for label, per_metric in data["answers"]["per_retriever"].items():
            if label in data["retrievers"]:
                for metric, s in per_metric.items():
                    data["retrievers"][label][metric] = s["mean"]
                    data["retrievers"][label][f"{metric}_n"] = s["n"]
    return _clean(data)


def write_per_query(path: Path, runs: Sequence[Run], queries: Mapping[str, str], answers: AnswerEval | None = None) -> None:
    answer_metrics = list(answers.ran) if answers is not None else []
    pool_columns = [c for c in OPTIONAL_KEYS if any(c in m for r in runs for m in r.per_query.values())]  # with pooled judgments
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = ["query_id", "query"]
        for r in runs:
            header += [f"{r.label}:{c}" for c in (*PER_QUERY_COLUMNS, *pool_columns)] + [f"{r.label}:top10"]
            if answers is not None:
                header += [f"{r.label}:answer", f"{r.label}:cited", f"{r.label}:context_ids"]
                header += [f"{r.label}:{m}" for m in answer_metrics] + [f"{r.label}:answer_failed", f"{r.label}:answer_n_a"]
        writer.writerow(header)
        for qid, text in queries.items():
            row: list[Any] = [qid, text]
            for r in runs:
                m = r.per_query.get(qid, {})
                row += [m.get(c) for c in (*PER_QUERY_COLUMNS, *pool_columns)] + [" ".join(r.rankings.get(qid, [])[:10])]
                if answers is not None:
                    a = answers.per_query(r.label, qid)
                    if a is None:
                        row += [None] * (3 + len(answer_metrics)) + [None, "not answered"]
                        continue
                    row += [a.text, " ".join(a.cited_ids), " ".join(a.context_ids)]
                    row += [a.scores.get(metric) for metric in answer_metrics]
                    row += ["; ".join(f"{k}: {v}" for k, v in a.failures.items()), "; ".join(f"{k}: {v}" for k, v in a.not_applicable.items())]
            writer.writerow(row)


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


RETRIEVAL_COLUMNS = ["ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100", "judged@10", "ndcg@10_condensed", "ms_per_query"]


def markdown(data: dict[str, Any]) -> str:
    cols = RETRIEVAL_COLUMNS
    lines = [f"# Compare report ({data['n_queries']} queries)", "", "| retriever | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, m in data["retrievers"].items():
        lines.append(f"| {label} | " + " | ".join(_fmt(m.get(c)) for c in cols) + " |")
    answers = data.get("answers")
    if answers:
        ran = list(answers["metrics_run"])
        lines += ["", f"## Answers (LLM: {answers['llm'] or '–'}; judge: {answers['judge'] or 'none'})", "",
                  "| retriever | " + " | ".join(f"{m} (n)" for m in ran) + " |", "|---" * (len(ran) + 1) + "|"]
        for label, per in answers["per_retriever"].items():
            lines.append(f"| {label} | " + " | ".join(f"{_fmt(per[m]['mean'])} ({per[m]['n']}" + (f", {per[m]['failed']} failed)" if per[m]["failed"] else ")")
                                                     for m in ran) + " |")
        lines += ["", "Metrics run: " + "; ".join(f"`{k}` ({v})" for k, v in answers["metrics_run"].items())]
        if answers["metrics_not_run"]:
            lines += ["", "Not run: " + "; ".join(f"`{k}` — {v}" for k, v in answers["metrics_not_run"].items())]
    lines += ["", "| b vs a | metric | delta | 95 % CI | p | W/T/L | n |", "|---|---|---|---|---|---|---|"]
    for d in data["deltas"]:
        lines.append(f"| {d['b']} vs {d['a']} | {d['metric']} | {_fmt(d['delta'], True)} | [{_fmt(d['ci95'][0], True)}, {_fmt(d['ci95'][1], True)}] | "
                     f"{_fmt(d['p_value'])} | {d['wins']}/{d['ties']}/{d['losses']} | {d.get('n', '–')} |")
    if data.get("notes"):
        lines += ["", "Notes:"]
    lines += [f"- {n}" for n in data.get("notes", [])]
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _bars_svg(data: dict[str, Any], metric: str = "ndcg@10") -> str:
    """Bars of the metric per retriever with 95 % CI whiskers from a bootstrap of that retriever's own mean."""
    items = list(data["retrievers"].items())
    width, bar, gap = 120 * max(len(items), 1) + 40, 60, 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bars" width="{width}" height="250" role="img" aria-label="{_e(metric)} by retriever">',
             f'<line x1="25" x2="25" y1="20" y2="200" stroke="#999"/><line x1="25" x2="{width - 5}" y1="200" y2="200" stroke="#999"/>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="0" y="{204 - 180 * tick:.1f}" font-size="9">{tick:.2f}</text>')
    for i, (label, m) in enumerate(items):
        value = m.get(metric) or 0.0
        lo, hi = m.get(f"{metric}_ci95") or [value, value]
        lo, hi = lo if lo is not None else value, hi if hi is not None else value
        x, y = 40 + i * (bar + gap), 200 - 180 * value
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="{bar}" height="{180 * value:.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                     f'<title>{_e(label)}: {value:.3f} [{lo:.3f}, {hi:.3f}]</title></rect>')
        cx = x + bar / 2
        parts.append(f'<g class="whisker" stroke="black"><line x1="{cx}" x2="{cx}" y1="{200 - 180 * hi:.1f}" y2="{200 - 180 * lo:.1f}"/>'
                     f'<line x1="{cx - 8}" x2="{cx + 8}" y1="{200 - 180 * hi:.1f}" y2="{200 - 180 * hi:.1f}"/>'
                     f'<line x1="{cx - 8}" x2="{cx + 8}" y1="{200 - 180 * lo:.1f}" y2="{200 - 180 * lo:.1f}"/></g>')
        parts.append(f'<text x="{x}" y="218" font-size="12">{_e(label)}</text><text x="{x}" y="{y - 4:.1f}" font-size="11">{value:.3f}</text>')
    return "".join(parts) + "</svg>"


def delta_histogram(deltas_per_query: Sequence[float], bins: int = 20) -> list[int]:
    """Counts of per-query deltas in `bins` equal bins over [-1, 1] (a delta of exactly 0 lands in the bin right of 0)."""
    counts = [0] * bins
    for d in deltas_per_query:
        i = int((max(-1.0, min(1.0, d)) + 1.0) / 2.0 * bins)
        counts[min(i, bins - 1)] += 1
    return counts


def _histogram_svg(a: str, b: str, values: Sequence[float], metric: str = "ndcg@10") -> str:
    """Histogram of per-query b - a deltas of `metric`; ties (delta 0) drawn apart as their own grey bar."""
    ties = sum(1 for v in values if abs(v) <= 1e-9)
    moved = [v for v in values if abs(v) > 1e-9]
    counts = delta_histogram(moved)
    top = max(counts + [ties, 1])
    w, h, left, base = 440, 200, 30, 160
    bw = (w - left - 10) / len(counts)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="histogram" width="{w}" height="{h}" role="img" '
             f'aria-label="per-query {_e(metric)} delta, {_e(b)} minus {_e(a)}">',
             f'<line x1="{left}" x2="{w - 10}" y1="{base}" y2="{base}" stroke="#999"/>']
    for i, c in enumerate(counts):
        lo = -1 + 2 * i / len(counts)
        x, bh = left + i * bw, (base - 20) * c / top
        color = "#54a24b" if lo >= 0 else "#e45756"
        parts.append(f'<rect x="{x:.1f}" y="{base - bh:.1f}" width="{bw - 1:.1f}" height="{bh:.1f}" fill="{color}">'
                     f'<title>[{lo:+.1f}, {lo + 2 / len(counts):+.1f}): {c} queries</title></rect>')
    zx = left + (w - left - 10) / 2
    th = (base - 20) * ties / top
    parts.append(f'<rect x="{zx - 3:.1f}" y="{base - th:.1f}" width="6" height="{th:.1f}" fill="#888"><title>ties: {ties} queries</title></rect>')
    parts.append(f'<line x1="{zx:.1f}" x2="{zx:.1f}" y1="15" y2="{base}" stroke="#333" stroke-dasharray="3,3"/>')
    for v in (-1, -0.5, 0, 0.5, 1):
        parts.append(f'<text x="{left + (v + 1) / 2 * (w - left - 10) - 8:.1f}" y="{base + 14}" font-size="10">{v:+.1f}</text>')
    wins, losses = sum(1 for v in moved if v > 0), sum(1 for v in moved if v < 0)
    parts.append(f'<text x="{left}" y="12" font-size="11">{_e(b)} − {_e(a)}: {wins} better, {ties} tied, {losses} worse (max bar {top})</text>')
    parts.append(f'<text x="{left}" y="{base + 30}" font-size="10">per-query {_e(metric)} delta</text>')
    return "".join(parts) + "</svg>"


def _projection_svg(proj: dict[str, Any]) -> str:
    pts = proj["points"]
    w = h = 420
    if not pts:
        return "<p>no points</p>"
    xs, ys = [p["x"] for p in pts], [p["y"] for p in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    sx = (w - 40) / ((x1 - x0) or 1)
    sy = (h - 40) / ((y1 - y0) or 1)

    def at(p: dict[str, Any]) -> tuple[float, float]:
        return 20 + (p["x"] - x0) * sx, h - 20 - (p["y"] - y0) * sy

    where = {(p["kind"] != "query", p["id"]): at(p) for p in pts}
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="projection" width="{w}" height="{h}" role="img" '
             f'aria-label="PCA of query and listing embeddings for {_e(proj["label"])}">',
             f'<rect x="0" y="0" width="{w}" height="{h}" fill="#fafafa" stroke="#ddd"/>']
    for p in pts:  # a faint line from each query to its relevant listings
        if p["kind"] == "query":
            qx, qy = at(p)
            for d in p.get("relevant", []):
                if (True, d) in where:
                    dx, dy = where[(True, d)]
                    parts.append(f'<line x1="{qx:.1f}" y1="{qy:.1f}" x2="{dx:.1f}" y2="{dy:.1f}" stroke="#54a24b" stroke-opacity="0.35"/>')
    style = {"query": ("#f58518", 4), "relevant": ("#54a24b", 4), "retrieved": ("#9e9e9e", 3)}
    for kind in ("retrieved", "relevant", "query"):
        color, r = style[kind]
        for p in pts:
            if p["kind"] == kind:
                x, y = at(p)
                shape = (f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{color}">' if kind == "query"
                         else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}" fill-opacity="0.8">')
                parts.append(shape + f'<title>{_e(kind)} {_e(p["id"])}: {_e(p["text"])}</title>' + ("</rect>" if kind == "query" else "</circle>"))
    return "".join(parts) + "</svg>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its <script> element: <, > and & are \\u-escaped (still valid JSON)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def write_html(path: Path, data: dict[str, Any], md: str = "", per_query_deltas: Mapping[tuple[str, str], Sequence[float]] | None = None,
               projections: Sequence[dict[str, Any]] = ()) -> None:
    """A self-contained page: tables, bar chart with CI whiskers, per-query delta histograms, embedding projections."""
    cols = RETRIEVAL_COLUMNS
    sections = [f"<h1>jobrag compare — {data['n_queries']} queries</h1>", "<h2>Retrievers</h2>",
                _table(["retriever", "spec", *cols], [[label, m.get("spec", ""), *(_fmt(m.get(c)) for c in cols)]
                                                        for label, m in data["retrievers"].items()]),
                "<h2>NDCG@10 with 95 % CI</h2>", _bars_svg(data)]
    if per_query_deltas:
        sections.append("<h2>Per-query NDCG@10 delta</h2><div class='grid'>")
        sections += [f"<figure>{_histogram_svg(a, b, v)}<figcaption>{_e(b)} vs {_e(a)}</figcaption></figure>" for (a, b), v in per_query_deltas.items()]
        sections.append("</div>")
    answers = data.get("answers")
    if answers:
        ran = list(answers["metrics_run"])
        sections.append(f"<h2>Answers</h2><p>LLM: {_e(answers['llm'] or '–')}; judge: {_e(answers['judge'] or 'none')}; "
                        f"embedder: {_e(answers.get('embedder') or '–')}</p>")
        sections.append(_table(["retriever", *[f"{m} (n)" for m in ran]],
                               [[label, *(f"{_fmt(per[m]['mean'])} (n={per[m]['n']}" + (f", {per[m]['failed']} failed)" if per[m]["failed"] else ")")
                                          for m in ran)] for label, per in answers["per_retriever"].items()]))
        sections.append("<h3>Metrics run</h3><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in answers["metrics_run"].items()) + "</ul>")
        if answers["metrics_not_run"]:
            sections.append("<h3>Not run</h3><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in answers["metrics_not_run"].items()) + "</ul>")
    sections.append("<h2>Paired deltas (b − a)</h2>")
    sections.append(_table(["b vs a", "metric", "delta", "95 % CI", "p", "W/T/L", "n"],
                           [[f"{d['b']} vs {d['a']}", d["metric"], _fmt(d["delta"], True), f"[{_fmt(d['ci95'][0], True)}, {_fmt(d['ci95'][1], True)}]",
                             _fmt(d["p_value"]), f"{d['wins']}/{d['ties']}/{d['losses']}", d.get("n", "–")] for d in data["deltas"]]))
    if projections:
        sections.append("<h2>Query and listing embeddings (PCA, 2-D)</h2><p>Orange squares: queries; green: their relevant listings "
                        "(lines join them); grey: other top-3 retrieved listings. Hover a point for its text.</p><div class='grid'>")
        for proj in projections:
            var = proj.get("variance", [0, 0])
            sections.append(f"<figure>{_projection_svg(proj)}<figcaption>{_e(proj['label'])} ({_e(proj['model'])}); "
                            f"PC1 {var[0]:.0%}, PC2 {var[1]:.0%} of variance</figcaption></figure>")
        sections.append("</div>")
    if data.get("notes"):
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in data["notes"]) + "</ul>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
             ".grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:12px;color:#444}")
    path.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>jobrag compare</title><style>{style}</style></head>"
                    f"<body>{''.join(sections)}<script type='application/json' id='summary'>{_json_for_script(data)}</script></body></html>",
                    encoding="utf-8")


def write_report(out: Path, runs: Sequence[Run], queries: Mapping[str, str], notes: list[str], manifest: dict[str, Any],
                 resamples: int, permutations: int, seed: int, answers: AnswerEval | None = None,
                 projections: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    from eval.stats import paired_bootstrap

    out.mkdir(parents=True, exist_ok=True)
    delta_rows = deltas(runs, resamples, permutations, seed)
    notes = list(notes)
    if answers is not None:
        extra, why = answer_deltas(answers, [r.label for r in runs], resamples, permutations, seed)
        delta_rows += extra
        notes += answers.notes() + why
    data = summary(runs, delta_rows, len(queries), notes, answers)
    for r in runs:  # each retriever's own CI, for the chart whiskers
        values = [m["ndcg@10"] or 0.0 for m in r.per_query.values()]
        _, lo, hi = paired_bootstrap([0.0] * len(values), values, resamples, seed)
        data["retrievers"][r.label]["ndcg@10_ci95"] = _clean([lo, hi])
    qids = sorted(set.intersection(*(set(r.per_query) for r in runs))) if runs else []
    per_query_deltas = {(a.label, b.label): [(b.per_query[q]["ndcg@10"] or 0.0) - (a.per_query[q]["ndcg@10"] or 0.0) for q in qids]
                        for a, b in combinations(runs, 2)}
    write_per_query(out / "per_query.csv", runs, queries, answers)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    md = markdown(data)
    (out / "summary.md").write_text(md)
    write_html(out / "report.html", data, md, per_query_deltas, projections)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return data
