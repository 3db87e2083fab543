"""Compare-report files: per_query.csv, summary.json, summary.md, report.html (eval.report_html), manifest.json.

`write_report` is the entry point. Above it: the answer-metric deltas (retrieval deltas: eval.runs), the oracle record
(per-query best of the retrievers: the headroom), the summary record (the summary.json schema of ARCHITECTURE.md,
extended with `oracle` and `segments` — eval.segments), the per-query CSV, and the table rows that summary.md and
report.html both show (eval.report_tables).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval.report_tables import (
    DELTA_HEADERS,
    RETRIEVAL_COLUMNS,
    answer_cells,
    delta_cells,
    oracle_cells,
    oracle_line,
    retriever_cells,
    segment_tables,
)
from eval.runs import OPTIONAL_KEYS, ORACLE_SPEC, Run, common_qids, deltas, oracle_run
from eval.segments import segment_report
from eval.stats import bootstrap_ci, compare

if TYPE_CHECKING:
    from eval.answers import AnswerEval

PER_QUERY_COLUMNS = ("first_rel_rank", "hit@1", "hit@3", "hit@10", "rr@10", "ndcg@10", "recall@10", "recall@100", "map@100")


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


def per_query_ndcg_deltas(runs: Sequence[Run]) -> dict[tuple[str, str], list[float]]:
    """(a, b) -> per-query NDCG@10 of b minus a, over the queries every run scored (the report's histograms)."""
    qids = common_qids(runs)
    return {(a.label, b.label): [(b.per_query[q]["ndcg@10"] or 0.0) - (a.per_query[q]["ndcg@10"] or 0.0) for q in qids]
            for a, b in combinations(runs, 2)}


def _clean(value: Any) -> Any:
    """NaN/inf -> None, recursively: summary.json stays valid JSON and a missing mean is never a number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def oracle_record(oracle: Run, runs: Sequence[Run], resamples: int, seed: int) -> dict[str, Any]:
    """summary.json's `oracle`: the per-query best of the retrievers (not a retriever: no spec, latency or size), with
    its NDCG@10 CI and the headroom over the best single retriever."""
    means = {k: v for k, v in oracle.summary().items() if k not in ("ms_per_query", "model_size_mb")}
    _, lo, hi = bootstrap_ci([m["ndcg@10"] for m in oracle.per_query.values()], resamples, seed)
    best = max(runs, key=lambda r: r.summary()["ndcg@10"])
    return {"spec": ORACLE_SPEC, "of": [r.label for r in runs], "n": len(oracle.per_query), **means, "ndcg@10_ci95": [lo, hi],
            "headroom": {"metric": "ndcg@10", "best_retriever": best.label, "delta": means["ndcg@10"] - best.summary()["ndcg@10"]}}


def summary(runs: Sequence[Run], delta_rows: list[dict[str, Any]], n_queries: int, notes: list[str],
            answers: AnswerEval | None = None, oracle: dict[str, Any] | None = None,
            segments: dict[str, Any] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"retrievers": {r.label: {"spec": r.spec, **r.summary()} for r in runs}, "deltas": delta_rows,
                            "n_queries": n_queries, "notes": notes}
    if oracle is not None:
        data["oracle"] = oracle
    if segments:
        data["segments"] = segments
    if answers is not None:
        data["answers"] = answers.to_json()
        for label, per_metric in data["answers"]["per_retriever"].items():
            if label in data["retrievers"]:
                for metric, s in per_metric.items():
                    data["retrievers"][label][metric] = s["mean"]
                    data["retrievers"][label][f"{metric}_n"] = s["n"]
    return _clean(data)


def write_per_query(path: Path, runs: Sequence[Run], queries: Mapping[str, str], answers: AnswerEval | None = None,
                    segment_fields: Mapping[str, Mapping[str, str]] | None = None) -> None:
    answer_metrics = list(answers.ran) if answers is not None else []
    pool_columns = [c for c in OPTIONAL_KEYS if any(c in m for r in runs for m in r.per_query.values())]  # with pooled judgments
    fields = dict(segment_fields or {})
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        header = ["query_id", "query", *(f"segment:{f}" for f in fields)]
        for r in runs:
            header += [f"{r.label}:{c}" for c in (*PER_QUERY_COLUMNS, *pool_columns)] + [f"{r.label}:top10"]
            if answers is not None:
                header += [f"{r.label}:answer", f"{r.label}:cited", f"{r.label}:context_ids"]
                header += [f"{r.label}:{m}" for m in answer_metrics] + [f"{r.label}:answer_failed", f"{r.label}:answer_n_a"]
        writer.writerow(header)
        for qid, text in queries.items():
            row: list[Any] = [qid, text, *(values.get(qid) for values in fields.values())]
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


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|---" * len(headers) + "|", *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def markdown(data: dict[str, Any]) -> str:
    lines = [f"# Compare report ({data['n_queries']} queries)", ""]
    rows = [[label, *retriever_cells(m)] for label, m in data["retrievers"].items()]
    lines += _md_table(["retriever", *RETRIEVAL_COLUMNS], rows + ([oracle_cells(data["oracle"])] if data.get("oracle") else []))
    if data.get("oracle"):
        lines += ["", oracle_line(data["oracle"])]
    answers = data.get("answers")
    if answers:
        ran = list(answers["metrics_run"])
        lines += ["", f"## Answers (LLM: {answers['llm'] or '–'}; judge: {answers['judge'] or 'none'})", ""]
        lines += _md_table(["retriever", *(f"{m} (n)" for m in ran)], [[label, *answer_cells(per, ran)] for label, per in answers["per_retriever"].items()])
        lines += ["", "Metrics run: " + "; ".join(f"`{k}` ({v})" for k, v in answers["metrics_run"].items())]
        if answers["metrics_not_run"]:
            lines += ["", "Not run: " + "; ".join(f"`{k}` — {v}" for k, v in answers["metrics_not_run"].items())]
    lines += ["", "## Paired deltas (b − a)", "", *_md_table(DELTA_HEADERS, [delta_cells(d) for d in data["deltas"]])]
    for name, segments in data.get("segments", {}).items():
        lines += ["", f"## By {name}"]
        for title, headers, table in segment_tables(name, segments):
            lines += ["", f"### {title}", "", *_md_table(headers, table)]
    if data.get("notes"):
        lines += ["", "Notes:"]
    lines += [f"- {n}" for n in data.get("notes", [])]
    return "\n".join(lines) + "\n"


def write_report(out: Path, runs: Sequence[Run], queries: Mapping[str, str], notes: list[str], manifest: dict[str, Any],
                 resamples: int, permutations: int, seed: int, answers: AnswerEval | None = None,
                 projections: Sequence[dict[str, Any]] = (), segment_fields: Mapping[str, Mapping[str, str]] | None = None) -> dict[str, Any]:
    """Every report file under `out`; returns the summary record (summary.json). `segment_fields` (field -> query id ->
    value) breaks every metric down by segment."""
    from eval.report_html import write_html  # altair and the inlined Vega bundle: only when a report is written

    out.mkdir(parents=True, exist_ok=True)
    delta_rows = deltas(runs, resamples, permutations, seed)
    notes = list(notes)
    if answers is not None:
        extra, why = answer_deltas(answers, [r.label for r in runs], resamples, permutations, seed)
        delta_rows += extra
        notes += answers.notes() + why
    oracle = oracle_run(runs)
    segments = segment_report(runs, oracle, segment_fields, resamples, permutations, seed) if segment_fields else None
    data = summary(runs, delta_rows, len(queries), notes, answers, oracle_record(oracle, runs, resamples, seed) if oracle else None, segments)
    for r in runs:  # each retriever's own CI, for the chart whiskers
        _, lo, hi = bootstrap_ci([m["ndcg@10"] or 0.0 for m in r.per_query.values()], resamples, seed)
        data["retrievers"][r.label]["ndcg@10_ci95"] = _clean([lo, hi])
    write_per_query(out / "per_query.csv", runs, queries, answers, segment_fields)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    (out / "summary.md").write_text(markdown(data))
    write_html(out / "report.html", data, per_query_ndcg_deltas(runs), projections)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return data
