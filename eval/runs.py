"""Runs: N labelled retrievers over one query set, scored per query against graded qrels.

Retrievers come in built (llama-index `BaseRetriever`s from the spec strings); this module only times them, keeps
their top-k listing ids and turns rankings into per-query metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from eval.benchmarks import read_qrels
from eval.metrics import mean, query_metrics
from eval.stats import compare
from rag_app.errors import ConfigError, SourceError
from rag_app.records import IRSplit, listing_id_of

logger = logging.getLogger(__name__)
SUMMARY_KEYS = {"ndcg@10": "ndcg@10", "mrr@10": "rr@10", "recall@10": "recall@10", "recall@100": "recall@100", "hit@1": "hit@1",
                "hit@3": "hit@3", "hit@10": "hit@10", "map@100": "map@100"}
DELTA_METRICS = ("ndcg@10", "mrr@10", "recall@10", "hit@1", "hit@10", "map@100")
OPTIONAL_KEYS = ("judged@10", "ndcg@10_condensed")  # only where the query set has pooled judgments
ORACLE_LABEL, ORACLE_SPEC = "oracle", "oracle (per-query best)"
# the oracle takes each query's best value of every quality metric; judged@10 measures the pool, not a ranking: left out
ORACLE_KEYS = (*SUMMARY_KEYS.values(), "ndcg@10_condensed")


@dataclass
class Run:
    label: str
    spec: str
    rankings: dict[str, list[str]] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    per_query: dict[str, dict[str, float | None]] = field(default_factory=dict)
    ms_per_query: float | None = 0.0  # None: not a retriever (the oracle)
    model_size_mb: float | None = None

    def summary(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {name: mean([m.get(key) for m in self.per_query.values()]) for name, key in SUMMARY_KEYS.items()}
        for key in OPTIONAL_KEYS:
            if any(key in m for m in self.per_query.values()):
                out[key] = mean([m.get(key) for m in self.per_query.values()])
        out["ms_per_query"] = self.ms_per_query
        out["model_size_mb"] = self.model_size_mb
        return out


def common_qids(runs: Sequence[Run]) -> list[str]:
    return sorted(set.intersection(*(set(r.per_query) for r in runs))) if runs else []


def deltas(runs: Sequence[Run], resamples: int, permutations: int, seed: int, qids: Sequence[str] | None = None,
           metrics: Sequence[str] = DELTA_METRICS) -> list[dict[str, Any]]:
    """Every pair of runs (a listed before b) and every metric: b - a with CI, p-value and W/T/L, paired over `qids`
    (default: every query all runs scored). NDCG@10 condensed joins in when every run has it."""
    out = []
    qids = common_qids(runs) if qids is None else list(qids)
    for a, b in combinations(runs, 2):
        optional = [m for m in ("ndcg@10_condensed",) if all(m in a.per_query[q] and m in b.per_query[q] for q in qids)] if qids else []
        for metric in (*metrics, *(m for m in optional if m not in metrics)):
            key = SUMMARY_KEYS.get(metric, metric)
            xa = [a.per_query[q][key] or 0.0 for q in qids]
            xb = [b.per_query[q][key] or 0.0 for q in qids]
            out.append({"a": a.label, "b": b.label, "metric": metric, **compare(xa, xb, resamples, permutations, seed), "n": len(qids)})
    return out


def oracle_run(runs: Sequence[Run]) -> Run | None:
    """Per query, the best value any run reached on each metric (each metric may take it from a different run): what a
    fusion that always picked the right retriever per query would score, the headroom above the best single run.
    None for fewer than two runs (the oracle of one run is that run). Over the queries every run scored."""
    if len(runs) < 2:
        return None
    oracle = Run(label=ORACLE_LABEL, spec=ORACLE_SPEC, ms_per_query=None)
    for qid in common_qids(runs):
        rows = [r.per_query[qid] for r in runs]
        best: dict[str, float | None] = {}
        for key in ORACLE_KEYS:
            values = [m[key] for m in rows if m.get(key) is not None]
            if values:
                best[key] = max(values)
        firsts = [m["first_rel_rank"] for m in rows if m.get("first_rel_rank") is not None]
        best["first_rel_rank"] = min(firsts) if firsts else None
        oracle.per_query[qid] = best
    return oracle


def load_judged(path: Path | None) -> dict[str, set[str]] | None:
    """`judgments_all.tsv` (grade-0 pairs included): which listings were judged per query, to report Judged@10."""
    if path is None or not Path(path).exists():
        return None
    return {qid: set(grades) for qid, grades in read_qrels(Path(path)).items()}


def merge_judgments(split: IRSplit, judged: dict[str, set[str]] | None, paths: list[Path]) -> tuple[IRSplit, dict[str, set[str]], list[str]]:
    """Extend a pooled query set with more judgments (`query-id  corpus-id  score` TSV, e.g. grades for the unjudged
    listings in each retriever's top 10, read off per_query.csv). A pair the set already judges keeps its grade."""
    graded = {q: dict(g) for q, g in (split.graded or {q: {d: 1 for d in docs} for q, docs in split.relevant_docs.items()}).items()}
    judged = {q: set(d) for q, d in (judged or {q: set(g) for q, g in graded.items()}).items()}
    added = kept = unknown = 0
    for path in paths:
        try:
            extra = read_qrels(Path(path))
        except SourceError as e:
            raise ConfigError(f"--extra-judgments {e}") from None
        for qid, grades in extra.items():
            for doc, grade in grades.items():
                if qid not in split.queries:
                    unknown += 1
                elif doc in judged.get(qid, set()):
                    kept += 1
                else:
                    judged.setdefault(qid, set()).add(doc)
                    if grade >= 1:
                        graded.setdefault(qid, {})[doc] = grade
                    added += 1
    relevant = {q: [d for d, g in gs.items() if g >= 1] for q, gs in graded.items()}
    note = (f"pool extended: {added} extra judgments from {', '.join(str(p) for p in paths)}"
            f" ({kept} already judged kept their original grade, {unknown} for queries not in this set ignored)")
    return split.model_copy(update={"graded": graded, "relevant_docs": relevant}), judged, [note]


def model_size_mb(path_or_name: str | None) -> float | None:
    """MiB of weights in the model's local directory (a packaged copy for a hub name); None when there is none."""
    if not path_or_name:
        return None
    from rag_app.model_paths import resolve_model

    root = Path(resolve_model(path_or_name))
    if not root.is_dir():
        return None
    weights = [p for p in root.rglob("*") if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt")
               and not any(part.startswith("checkpoint-") for part in p.relative_to(root).parts)]  # trainer checkpoints are copies
    safetensors_dirs = {p.parent for p in weights if p.suffix == ".safetensors"}  # a .bin beside them holds the same weights
    return sum(p.stat().st_size for p in weights if p.suffix == ".safetensors" or p.parent not in safetensors_dirs) / 2**20


def run_one(label: str, spec: str, retriever: Any, split: IRSplit, judged: Mapping[str, set[str]] | None, model: str | None = None,
            progress: bool = True) -> Run:
    run = Run(label=label, spec=spec, model_size_mb=model_size_mb(model))
    elapsed = 0.0
    for qid, text in tqdm(split.queries.items(), desc=f"run {label}", disable=not progress):
        t = time.perf_counter()
        hits = retriever.retrieve(text)
        elapsed += time.perf_counter() - t
        run.rankings[qid] = [listing_id_of(h) for h in hits]
        run.scores[qid] = [float(h.score or 0.0) for h in hits]
        grades = split.graded.get(qid) or {d: 1 for d in split.relevant_docs.get(qid, [])}
        run.per_query[qid] = query_metrics(run.rankings[qid], grades, judged.get(qid, set()) if judged is not None else None)
    run.ms_per_query = 1000 * elapsed / max(len(split.queries), 1)
    return run


def check_split(split: IRSplit, corpus_ids: set[str]) -> list[str]:
    """Problems that would make a mean silently wrong: qrels ids missing from the corpus, queries without qrels."""
    problems = []
    missing = sorted({d for docs in split.graded.values() for d in docs} - corpus_ids) if split.graded else []
    if missing:
        problems.append(f"{len(missing)} judged ids are not in the corpus (e.g. {', '.join(missing[:3])}); they can never be retrieved")
    unjudged = [q for q in split.queries if not any(g >= 1 for g in (split.graded.get(q) or {}).values()) and not split.relevant_docs.get(q)]
    if unjudged:
        problems.append(f"{len(unjudged)} queries have no relevant document in the qrels and are left out (e.g. {', '.join(unjudged[:3])})")
    return problems

