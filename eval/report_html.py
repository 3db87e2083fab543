"""report.html: one self-contained page (tables, charts, the summary record), readable offline.

The charts are Altair (Vega-Lite) specs: NDCG@10 per retriever with its bootstrap CI, a per-query NDCG@10 delta
histogram per pair of retrievers, and a PCA picture of query and listing embeddings per embedding model (eval.projection).
The page draws them with vega-embed; the JavaScript bundle (Vega, Vega-Lite, vega-embed) comes from vl-convert-python,
the same bundle Altair inlines for `chart.save(..., inline=True)`, and is written into the page: no CDN, no request.
User text (labels, queries, listings) reaches the page only HTML-escaped or inside JSON with <, > and & escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import altair as alt

from eval.report_tables import DELTA_HEADERS, RETRIEVAL_COLUMNS, answer_cells, delta_cells, oracle_line, retriever_cells, segment_tables
from eval.stats import TIE

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d")
OUTCOMES = {"worse": "#e45756", "tied": "#888888", "better": "#54a24b"}
KINDS = {"retrieved": ("#9e9e9e", "circle"), "relevant": ("#54a24b", "circle"), "query": ("#f58518", "square")}  # drawn in this order
STYLE = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
         ".grid{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0}figcaption{font-size:12px;color:#444}")
RENDER = ("const specs = JSON.parse(document.getElementById('charts').textContent);\n"
          "for (const [id, spec] of Object.entries(specs)) vegaEmbed('#' + id, spec, {actions: false, renderer: 'svg'}).catch(console.error);")


def ci_chart(data: Mapping[str, Any], metric: str = "ndcg@10") -> alt.LayerChart:
    """Bars of the metric per retriever (and the oracle, grey, last); whiskers: the 95 % bootstrap CI of each one's own mean."""
    rows = []
    bars_of = {**data["retrievers"], **({"oracle": data["oracle"]} if data.get("oracle") else {})}
    for label, m in bars_of.items():
        value = m.get(metric) or 0.0
        lo, hi = m.get(f"{metric}_ci95") or [value, value]
        rows.append({"retriever": label, "value": value, "lo": value if lo is None else lo, "hi": value if hi is None else hi})
    labels = list(bars_of)
    colours = [PALETTE[i % len(PALETTE)] for i in range(len(data["retrievers"]))] + (["#bbbbbb"] if data.get("oracle") else [])
    base = alt.Chart(alt.InlineData(values=rows)).encode(x=alt.X("retriever:N", sort=labels, title=None, axis=alt.Axis(labelAngle=0)))
    tooltip = [alt.Tooltip("retriever:N"), alt.Tooltip("value:Q", title=metric, format=".3f"),
               alt.Tooltip("lo:Q", title="CI low", format=".3f"), alt.Tooltip("hi:Q", title="CI high", format=".3f")]
    bars = base.mark_bar().encode(y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 1])), tooltip=tooltip,
                                  color=alt.Color("retriever:N", sort=labels, legend=None,
                                                  scale=alt.Scale(domain=labels, range=colours)))
    whiskers = base.mark_errorbar(ticks=True, size=18, thickness=1.5, color="black").encode(y=alt.Y("lo:Q", title=metric), y2="hi:Q")
    text = base.mark_text(dy=-8).encode(y="hi:Q", text=alt.Text("value:Q", format=".3f"))
    return alt.layer(bars, whiskers, text).properties(width=max(120 * len(rows), 240), height=220, title=f"{metric} with 95 % CI")


def delta_histogram_chart(a: str, b: str, values: Sequence[float], metric: str = "ndcg@10") -> alt.LayerChart:
    """Per-query b - a deltas in 0.1 bins over [-1, 1], coloured by sign; ties (delta 0) as their own grey bar at 0."""
    outcome = ["better" if v > TIE else "worse" if v < -TIE else "tied" for v in values]
    moved = [{"delta": v, "outcome": o} for v, o in zip(values, outcome) if o != "tied"]
    counts = {o: outcome.count(o) for o in OUTCOMES}
    colour = alt.Color("outcome:N", scale=alt.Scale(domain=list(OUTCOMES), range=list(OUTCOMES.values())), title=None)
    x = alt.X("delta:Q", bin=alt.Bin(extent=[-1, 1], step=0.1), scale=alt.Scale(domain=[-1, 1]), title=f"per-query {metric} delta ({b} − {a})")
    bars = alt.Chart(alt.InlineData(values=moved)).mark_bar().encode(
        x=x, y=alt.Y("count():Q", title="queries"), color=colour,
        tooltip=[alt.Tooltip("delta:Q", bin=alt.Bin(extent=[-1, 1], step=0.1), title="delta"), alt.Tooltip("count():Q", title="queries")])
    ties = alt.Chart(alt.InlineData(values=[{"delta": 0.0, "queries": counts["tied"], "outcome": "tied"}])).mark_bar(size=8, stroke="#333", strokeWidth=1).encode(
        x="delta:Q", y="queries:Q", color=colour, tooltip=[alt.Tooltip("outcome:N"), alt.Tooltip("queries:Q")])
    zero = alt.Chart(alt.InlineData(values=[{"delta": 0.0}])).mark_rule(strokeDash=[3, 3], color="#333").encode(x="delta:Q")
    title = f"{b} − {a}: {counts['better']} better, {counts['tied']} tied, {counts['worse']} worse"
    return alt.layer(bars, ties, zero).properties(width=380, height=160, title=title)


def projection_chart(proj: Mapping[str, Any]) -> alt.LayerChart:
    """Queries (squares), their relevant listings (green, joined to the query) and other retrieved listings (grey)."""
    points = sorted(proj["points"], key=lambda p: list(KINDS).index(p["kind"]))
    at = {(p["kind"] != "query", p["id"]): p for p in points}
    links = [{"x": q["x"], "y": q["y"], "x2": at[(True, d)]["x"], "y2": at[(True, d)]["y"]}
             for q in points if q["kind"] == "query" for d in q.get("relevant", []) if (True, d) in at]
    var = proj.get("variance", [0, 0])
    x = alt.X("x:Q", title=f"PC1 ({var[0]:.0%} of variance)", scale=alt.Scale(zero=False))
    y = alt.Y("y:Q", title=f"PC2 ({var[1]:.0%})", scale=alt.Scale(zero=False))
    lines = alt.Chart(alt.InlineData(values=links)).mark_rule(color=KINDS["relevant"][0], opacity=0.35).encode(x=x, y=y, x2="x2:Q", y2="y2:Q")
    rows = [{k: p[k] for k in ("kind", "id", "text", "x", "y")} for p in points]
    dots = alt.Chart(alt.InlineData(values=rows)).mark_point(filled=True, size=50, opacity=0.85).encode(
        x=x, y=y, color=alt.Color("kind:N", scale=alt.Scale(domain=list(KINDS), range=[c for c, _ in KINDS.values()]), title=None),
        shape=alt.Shape("kind:N", scale=alt.Scale(domain=list(KINDS), range=[s for _, s in KINDS.values()]), title=None),
        tooltip=[alt.Tooltip("kind:N"), alt.Tooltip("id:N"), alt.Tooltip("text:N")])
    return alt.layer(lines, dots).properties(width=420, height=420).interactive()


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _json_for_script(data: Any) -> str:
    """JSON that cannot end its <script> element: <, > and & are \\u-escaped (still valid JSON)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def vega_bundle() -> str:
    """vega-embed + Vega-Lite + Vega as one script, for the Vega-Lite version of the installed Altair."""
    import vl_convert

    return vl_convert.javascript_bundle(vl_version=alt.SCHEMA_VERSION.rsplit(".", 1)[0])


class _Charts:
    """Collects chart specs by the id of the element each is drawn into."""

    def __init__(self) -> None:
        self.specs: dict[str, dict[str, Any]] = {}

    def figure(self, kind: str, chart: alt.TopLevelMixin, caption: str = "") -> str:
        """A <figure> holding the chart; `kind` is its element's class (histogram, projection, whisker: bars with CI whiskers)."""
        chart_id = f"chart-{len(self.specs)}"
        self.specs[chart_id] = chart.to_dict()
        return f'<figure><div class="{kind}" id="{chart_id}"></div>' + (f"<figcaption>{caption}</figcaption>" if caption else "") + "</figure>"


def _answer_sections(answers: Mapping[str, Any]) -> list[str]:
    ran = list(answers["metrics_run"])
    out = [f"<h2>Answers</h2><p>LLM: {_e(answers['llm'] or '–')}; judge: {_e(answers['judge'] or 'none')}; "
           f"embedder: {_e(answers.get('embedder') or '–')}</p>",
           _table(["retriever", *(f"{m} (n)" for m in ran)], [[label, *answer_cells(per, ran)] for label, per in answers["per_retriever"].items()]),
           "<h3>Metrics run</h3><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in answers["metrics_run"].items()) + "</ul>"]
    if answers["metrics_not_run"]:
        out.append("<h3>Not run</h3><ul>" + "".join(f"<li><b>{_e(k)}</b>: {_e(v)}</li>" for k, v in answers["metrics_not_run"].items()) + "</ul>")
    return out


def write_html(path: Path, data: dict[str, Any], per_query_deltas: Mapping[tuple[str, str], Sequence[float]] | None = None,
               projections: Sequence[dict[str, Any]] = ()) -> None:
    """The page: retriever table, CI chart, delta histograms, answer tables, paired deltas, projections, notes."""
    charts = _Charts()
    rows = [[label, m.get("spec", ""), *retriever_cells(m)] for label, m in data["retrievers"].items()]
    oracle = data.get("oracle")
    sections = [f"<h1>jobrag compare — {data['n_queries']} queries</h1>", "<h2>Retrievers</h2>",
                _table(["retriever", "spec", *RETRIEVAL_COLUMNS], rows + ([["oracle", oracle["spec"], *retriever_cells(oracle)]] if oracle else [])),
                f"<p class='oracle'>{_e(oracle_line(oracle))}</p>" if oracle else "",
                "<h2>NDCG@10 with 95 % CI</h2>", charts.figure("whisker", ci_chart(data), "bars: mean over the queries; whiskers: 95 % bootstrap CI")]
    if per_query_deltas:
        sections.append("<h2>Per-query NDCG@10 delta</h2><div class='grid'>")
        sections += [charts.figure("histogram", delta_histogram_chart(a, b, v), f"{_e(b)} vs {_e(a)}") for (a, b), v in per_query_deltas.items()]
        sections.append("</div>")
    if data.get("answers"):
        sections += _answer_sections(data["answers"])
    sections += ["<h2>Paired deltas (b − a)</h2>", _table(DELTA_HEADERS, [delta_cells(d) for d in data["deltas"]])]
    for name, segments in data.get("segments", {}).items():
        sections.append(f"<h2>By {_e(name)}</h2>")
        sections += [f"<h3>{_e(title)}</h3>" + _table(headers, table) for title, headers, table in segment_tables(name, segments)]
    if projections:
        sections.append("<h2>Query and listing embeddings (PCA, 2-D)</h2><p>Orange squares: queries; green: their relevant listings "
                        "(lines join them); grey: other top-3 retrieved listings. Hover a point for its text; drag or scroll to zoom.</p><div class='grid'>")
        for proj in projections:
            caption = f"{_e(proj['label'])} ({_e(proj['model'])})"
            sections.append(charts.figure("projection", projection_chart(proj), caption) if proj["points"] else f"<p>{caption}: no points</p>")
        sections.append("</div>")
    if data.get("notes"):
        sections.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in data["notes"]) + "</ul>")
    path.write_text(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>jobrag compare</title><style>{STYLE}</style>"
                    f"<script>{vega_bundle()}</script></head><body>{''.join(sections)}"
                    f"<script type='application/json' id='summary'>{_json_for_script(data)}</script>"
                    f"<script type='application/json' id='charts'>{_json_for_script(charts.specs)}</script>"
                    f"<script>{RENDER}</script></body></html>", encoding="utf-8")
