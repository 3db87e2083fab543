"""Reports page: a compare run's summary with CIs, charts, and the per-query table ("where did fine-tuning lose?")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rag_app.settings import Settings
from rag_app.ui.state import current_choice

METRICS = ("ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100")
PER_QUERY = {"ndcg@10": "ndcg@10", "mrr@10": "rr@10", "recall@10": "recall@10", "hit@1": "hit@1", "hit@10": "hit@10"}


def render() -> None:
    choice = current_choice()
    st.title("Compare reports")
    runs = report_dirs(choice.settings)
    if not runs:
        st.info(f"No compare run under {choice.settings.dir('reports')} yet: run `jobrag compare …` first.")
        return
    root = choice.settings.dir("reports")
    names = [str(r.relative_to(root)) for r in runs]
    run = runs[names.index(st.selectbox("Compare run (newest first)", names, key="report_run"))]
    data = load_summary(run)
    st.caption(f"{data['n_queries']} queries · {run}")
    st.subheader("Summary (mean, 95 % bootstrap CI)")
    st.dataframe(summary_table(data), hide_index=True, key="report_summary")
    metric = st.selectbox("Metric", METRICS, key="report_metric")
    st.altair_chart(bars(data, metric), key="report_bars")
    deltas = pd.DataFrame(data.get("deltas", []))
    if not deltas.empty:
        st.subheader("Paired deltas (b − a)")
        shown = deltas[deltas["metric"] == metric].assign(ci95=lambda d: d["ci95"].map(lambda c: f"[{c[0]:+.3f}, {c[1]:+.3f}]"))
        st.dataframe(shown, hide_index=True, key="report_deltas")
    for note in data.get("notes", []):
        st.caption(f"note: {note}")
    per_query(run, list(data["retrievers"]))
    if (run / "report.html").exists():
        st.download_button("Download report.html", (run / "report.html").read_bytes(), file_name="report.html", mime="text/html")


def per_query(run: Path, labels: list[str]) -> None:
    """Histogram of per-query deltas between two retrievers and the filterable, sortable per-query table."""
    path = run / "per_query.csv"
    if not path.exists() or len(labels) < 2:
        return
    st.subheader("Per query")
    table = pd.read_csv(path, dtype={"query_id": str})
    a_col, b_col, m_col, f_col = st.columns(4)
    a = a_col.selectbox("a (baseline)", labels, index=0, key="pq_a")
    b = b_col.selectbox("b (candidate)", labels, index=len(labels) - 1, key="pq_b")
    metric = m_col.selectbox("metric", list(PER_QUERY), key="pq_metric")
    which = f_col.selectbox("show", ["all", "b lost", "b won", "ties"], key="pq_filter")
    col = PER_QUERY[metric]
    table["delta"] = table[f"{b}:{col}"].fillna(0) - table[f"{a}:{col}"].fillna(0)
    st.altair_chart(alt.Chart(table).mark_bar().encode(x=alt.X("delta:Q", bin=alt.Bin(extent=[-1, 1], step=0.1), title=f"{metric}: {b} − {a}"),
                                                        y=alt.Y("count()", title="queries")), key="pq_hist")
    text = st.text_input("query contains", key="pq_text")
    shown = table[{"all": table["delta"].notna(), "b lost": table["delta"] < 0, "b won": table["delta"] > 0,
                   "ties": table["delta"] == 0}[which]]
    if text:
        shown = shown[shown["query"].str.contains(text, case=False, regex=False)]
    cols = ["query_id", "query", f"{a}:{col}", f"{b}:{col}", "delta", f"{a}:first_rel_rank", f"{b}:first_rel_rank"]
    st.caption(f"{len(shown)} of {len(table)} queries; click a column header to sort")
    st.dataframe(shown[[c for c in cols if c in shown]].sort_values("delta"), hide_index=True, key="pq_table")


def summary_table(data: dict) -> pd.DataFrame:
    """One row per retriever: each metric as `mean [CI]`, plus judged@10, condensed nDCG and latency when present."""
    rows = []
    for label, m in data["retrievers"].items():
        row = {"retriever": label, "spec": m.get("spec", "")}
        row |= {k: _with_ci(m.get(k), m.get(f"{k}_ci95")) for k in METRICS}
        row |= {k: m.get(k) for k in ("judged@10", "ndcg@10_condensed", "ms_per_query") if k in m}
        rows.append(row)
    return pd.DataFrame(rows)


def bars(data: dict, metric: str) -> alt.LayerChart:
    """One bar per retriever for `metric` (0..1) with its 95 % CI as a whisker."""
    rows = []
    for label, m in data["retrievers"].items():
        value = m.get(metric) or 0.0
        lo, hi = m.get(f"{metric}_ci95") or (value, value)
        rows.append({"retriever": label, "value": value, "lo": lo, "hi": hi})
    base = alt.Chart(pd.DataFrame(rows)).encode(x=alt.X("retriever:N", sort=None, axis=alt.Axis(labelAngle=0)))
    bar = base.mark_bar().encode(y=alt.Y("value:Q", title=metric, scale=alt.Scale(domain=[0, 1])),
                                 tooltip=["retriever", alt.Tooltip("value:Q", format=".3f", title=metric),
                                          alt.Tooltip("lo:Q", format=".3f", title="CI low"), alt.Tooltip("hi:Q", format=".3f", title="CI high")])
    whisker = base.mark_rule(color="black", strokeWidth=2).encode(y=alt.Y("lo:Q", title=metric), y2="hi:Q")
    return bar + whisker


def report_dirs(settings: Settings) -> list[Path]:
    """Compare runs under <home>/reports (any depth), newest first."""
    root = settings.dir("reports")
    found = [p.parent for p in root.rglob("summary.json")] if root.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def load_summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text(encoding="utf-8"))


def _with_ci(value: float | None, ci: list[float] | None) -> str:
    if value is None:
        return "–"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


render()
