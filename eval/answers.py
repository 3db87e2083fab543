"""Answer quality: one answer per (query, retriever) through an injected answer function, scored with ragas.

The chat pipeline is not imported here (pipelines meet only through records): the caller passes
`answer_fn(question, retriever_label) -> Answer` (`rag_app.records.Answer`), built from the same retrievers as the run.

Metrics (our name <- how):
- always: `citation_precision` (cited ids that are relevant in the qrels; undefined for an answer that cites nothing),
  `id_context_precision` / `id_context_recall` <- ragas `IDBasedContextPrecision` / `IDBasedContextRecall` (the ids of
  the listings placed in the answer's context against the qrels' relevant ids);
- with a reference answer for the query: `semantic_similarity` <- ragas `SemanticSimilarity` (our embedder);
- with a judge LLM: `faithfulness`, `answer_relevancy` (ragas `ResponseRelevancy`, our embedder),
  `llm_context_precision` (ragas `LLMContextPrecisionWithoutReference`) and, with a reference, `llm_context_recall`
  (ragas `LLMContextRecall`).

Everything goes through ragas `evaluate` with typed `SingleTurnSample` rows and an explicit `RunConfig`, with
`raise_exceptions=False`: a row the judge fails is kept, marked with the reason ragas logged, and left out of the mean,
whose n is reported. A metric ragas would otherwise fill with a default (an OpenAI model, OpenAI embeddings) is never
run without the judge / embedder passed in explicitly. ragas is imported lazily (seconds) and its telemetry is off.
"""

from __future__ import annotations

import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag_app.records import Answer

logger = logging.getLogger(__name__)
AnswerFn = Callable[[str, str], Answer]

# our name -> (ragas metric class, needs judge, needs reference, needs embeddings)
RAGAS_METRICS: dict[str, tuple[str, bool, bool, bool]] = {
    "id_context_precision": ("IDBasedContextPrecision", False, False, False),
    "id_context_recall": ("IDBasedContextRecall", False, False, False),
    "semantic_similarity": ("SemanticSimilarity", False, True, True),
    "faithfulness": ("Faithfulness", True, False, False),
    "answer_relevancy": ("ResponseRelevancy", True, False, True),
    "llm_context_precision": ("LLMContextPrecisionWithoutReference", True, False, False),
    "llm_context_recall": ("LLMContextRecall", True, True, False),
}
ANSWER_METRICS = ("citation_precision", *RAGAS_METRICS)
_JOB_ERROR = re.compile(r"Exception raised in Job\[(\d+)\]: (.*)", re.S)


@dataclass
class AnswerRow:
    """One generated answer and its scores. A metric without a score is either failed or not applicable, with the reason."""

    qid: str
    label: str
    question: str
    text: str | None = None
    cited_ids: list[str] = field(default_factory=list)
    context_ids: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    notice: str | None = None
    error: str | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # metric -> why it failed (judge error, generation error)
    not_applicable: dict[str, str] = field(default_factory=dict)  # metric -> why it does not apply (no citation, no reference)


@dataclass
class JudgeConfig:
    """An OpenAI-compatible judge endpoint, always explicit (no default endpoint, no default model)."""

    api_base: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 1
    max_workers: int = 4
    seed: int = 0

    def describe(self) -> str:
        return f"openai-compatible {self.model} at {self.api_base}"


@dataclass
class AnswerEval:
    """All answers of all retrievers, which metrics ran, and why the others did not."""

    rows: dict[str, dict[str, AnswerRow]]
    ran: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    llm: str = ""
    judge: str | None = None
    embedder: str | None = None

    def per_query(self, label: str, qid: str) -> AnswerRow | None:
        return self.rows.get(label, {}).get(qid)

    def metric_summary(self, label: str) -> dict[str, dict[str, Any]]:
        """metric -> {"mean": over scored rows (None if none), "n": scored rows, "failed": rows it failed on, "n_a": rows it does not apply to}."""
        out = {}
        for metric in self.ran:
            values = [r.scores.get(metric) for r in self.rows.get(label, {}).values()]
            scored = [v for v in values if v is not None]
            rows = self.rows.get(label, {}).values()
            failed = sum(metric in r.failures or "generation" in r.failures for r in rows)
            n_a = sum(metric in r.not_applicable for r in rows)
            out[metric] = {"mean": sum(scored) / len(scored) if scored else None, "n": len(scored), "failed": failed, "n_a": n_a}
        return out

    def notes(self) -> list[str]:
        notes = []
        for label, rows in self.rows.items():
            errors = [r for r in rows.values() if r.error]
            if errors:
                notes.append(f"{label}: answer generation failed on {len(errors)} of {len(rows)} queries (e.g. {errors[0].error})")
            for metric, s in self.metric_summary(label).items():
                if s["failed"] and any(metric in r.failures for r in rows.values()):
                    example = next(r.failures[metric] for r in rows.values() if metric in r.failures)
                    notes.append(f"{label}: {metric} failed on {s['failed']} of {len(rows)} rows (marked in per_query.csv; "
                                 f"mean over the {s['n']} scored rows), e.g. {example}")
        return notes

    def to_json(self) -> dict[str, Any]:
        return {"llm": self.llm, "judge": self.judge, "embedder": self.embedder, "metrics_run": self.ran, "metrics_not_run": self.skipped,
                "per_retriever": {label: self.metric_summary(label) for label in self.rows}}


def load_references(directory: Path | None) -> dict[str, str]:
    """Reference answers, when the query dir has them: `references.jsonl` (`_id`/`query-id`, `reference`/`answer`/`text`)
    or a `reference`/`answer` field on `queries.jsonl` rows."""
    import json

    out: dict[str, str] = {}
    if directory is None or not Path(directory).is_dir():
        return out
    for name in ("queries.jsonl", "references.jsonl"):
        path = Path(directory) / name
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            qid = row.get("_id", row.get("query-id", row.get("id")))
            keys = ("reference", "answer") if name == "queries.jsonl" else ("reference", "answer", "text")
            ref = next((row[k] for k in keys if isinstance(row.get(k), str) and row[k].strip()), None)
            if qid is not None and ref:
                out[str(qid)] = ref
    return out


def generate_answers(answer_fn: AnswerFn, labels: Sequence[str], queries: Mapping[str, str], context_k: int,
                     context_chars: int | None = None, progress: bool = True) -> dict[str, dict[str, AnswerRow]]:
    """Ask every query through every retriever. A failing call marks its row; the others go on."""
    rows: dict[str, dict[str, AnswerRow]] = {}
    for label in labels:
        rows[label] = {}
        for qid, question in tqdm(queries.items(), desc=f"answers {label}", disable=not progress):
            row = AnswerRow(qid=qid, label=label, question=question)
            try:
                answer = answer_fn(question, label)
            except Exception as exc:  # one bad call must not sink the report
                row.error = f"{exc.__class__.__name__}: {str(exc)[:200]}"
                logger.warning("answer %s/%s failed: %s", label, qid, row.error)
            else:
                used = answer.sources[:context_k]
                row.text, row.cited_ids, row.notice = answer.text, list(answer.cited_ids), answer.notice
                row.context_ids = [s.id for s in used]
                row.contexts = [f"{s.header()}\n{s.chunk[:context_chars] if context_chars else s.chunk}" for s in used]
            rows[label][qid] = row
    return rows


def citation_precision(cited: Sequence[str], relevant: set[str]) -> float | None:
    """Share of cited listings that are relevant; None when nothing is cited (undefined, not zero)."""
    cited = list(dict.fromkeys(cited))
    return sum(c in relevant for c in cited) / len(cited) if cited else None


def _ragas_embeddings(embedder: Any) -> Any:
    """Our llama-index embedder behind ragas' own llama-index wrapper (the interface its metrics call)."""
    from ragas.embeddings.base import LlamaIndexEmbeddingsWrapper

    return LlamaIndexEmbeddingsWrapper(embedder)


def _judge_llm(judge: JudgeConfig) -> Any:
    """A langchain ChatOpenAI on the judge endpoint: plain chat completions, which every OpenAI-compatible server speaks
    (ragas asks for JSON in the prompt and re-asks on output it cannot parse). ragas' evaluate wraps it itself."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=judge.model, base_url=judge.api_base, api_key=judge.api_key or "unused", timeout=judge.timeout_s,
                      max_retries=judge.max_retries, temperature=0.0, seed=judge.seed)


class _JobErrors(logging.Handler):
    """Collects the per-job errors ragas' executor logs (and swallows with raise_exceptions=False)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.errors: dict[int, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = _JOB_ERROR.match(record.getMessage())
        if match:
            self.errors[int(match.group(1))] = match.group(2)[:300]


def _evaluate(samples: list[Any], names: list[str], judge_llm: Any, embeddings: Any, judge: JudgeConfig | None,
              progress: bool) -> tuple[list[dict[str, float | None]], list[dict[str, str]], list[dict[str, str]]]:
    """ragas evaluate over typed rows: per row, metric -> score (None when failed), metric -> why it failed, why n/a."""
    from ragas import EvaluationDataset, RunConfig, evaluate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ragas.metrics as rm

        metrics = []
        if judge_llm is None and any(RAGAS_METRICS[n][1] for n in names):
            raise ValueError("judge metrics need an explicit judge LLM; ragas would otherwise fall back to OpenAI")
        for name in names:
            cls = getattr(rm, RAGAS_METRICS[name][0])
            metric = cls()
            if RAGAS_METRICS[name][3]:
                metric.embeddings = embeddings
            if RAGAS_METRICS[name][1]:
                metric.llm = None  # set by evaluate from the explicit judge below
            metrics.append(metric)
        run_config = RunConfig(timeout=int(judge.timeout_s * 3) if judge else 60, max_retries=judge.max_retries if judge else 1,
                               max_wait=5, max_workers=judge.max_workers if judge else 4, seed=judge.seed if judge else 0)
        handler = _JobErrors()
        executor_logger = logging.getLogger("ragas.executor")
        executor_logger.addHandler(handler)
        try:
            result = evaluate(EvaluationDataset(samples=samples), metrics=metrics, llm=judge_llm, embeddings=embeddings,
                              run_config=run_config, raise_exceptions=False, show_progress=progress)
        finally:
            executor_logger.removeHandler(handler)
    scores, failures, n_as = [], [], []
    keys = [m.name for m in metrics]
    for i, row in enumerate(result.scores):
        s: dict[str, float | None] = {}
        f: dict[str, str] = {}
        na: dict[str, str] = {}
        for j, (name, key) in enumerate(zip(names, keys)):
            value = row.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                s[name] = None
                why = handler.errors.get(len(names) * i + j)
                if RAGAS_METRICS[name][1]:
                    f[name] = f"judge failed: {why}" if why else "judge gave no usable verdict (ragas returned NaN)"
                elif why:
                    f[name] = why
                else:
                    na[name] = "undefined for this row (e.g. no context listing; ragas returned NaN)"
            else:
                s[name] = float(value)
        scores.append(s)
        failures.append(f)
        n_as.append(na)
    return scores, failures, n_as


def score_answers(rows: dict[str, dict[str, AnswerRow]], relevant: Mapping[str, Sequence[str]], references: Mapping[str, str] | None = None,
                  embedder: Any = None, judge: JudgeConfig | None = None, progress: bool = True, llm: str = "",
                  embedder_name: str | None = None) -> AnswerEval:
    """Score every answered row; returns the rows (scores, failures marked) with which metrics ran and why others did not."""
    references = references or {}
    result = AnswerEval(rows=rows, llm=llm, judge=judge.describe() if judge else None, embedder=embedder_name if embedder is not None else None)
    result.ran["citation_precision"] = "cited ids that are relevant in the qrels (rows that cite nothing are left out)"
    all_rows = [r for by_q in rows.values() for r in by_q.values()]
    for r in all_rows:
        if r.error:
            for metric in ANSWER_METRICS:
                r.scores[metric] = None
            r.failures["generation"] = r.error
            continue
        r.scores["citation_precision"] = citation_precision(r.cited_ids, set(relevant.get(r.qid, [])))
        if r.scores["citation_precision"] is None:
            r.not_applicable["citation_precision"] = "the answer cites no listing"
    has_ref = any(references.get(r.qid) for r in all_rows)
    groups: dict[bool, list[str]] = {False: [], True: []}  # by "needs a reference"
    for name, (cls, needs_judge, needs_ref, needs_emb) in RAGAS_METRICS.items():
        why = None
        if needs_judge and judge is None:
            why = "needs a judge LLM (--judge openai with an OpenAI-compatible endpoint)"
        elif needs_ref and not has_ref:
            why = "needs reference answers (none in this query set: add `reference` to queries.jsonl or a references.jsonl)"
        elif needs_emb and embedder is None:
            why = "needs an embedder"
        if why:
            result.skipped[name] = why
            continue
        result.ran[name] = f"ragas {cls}" + (f" judged by {judge.describe()}" if needs_judge and judge else "") + \
            (f" with {embedder_name or 'our embedder'}" if needs_emb else "")
        groups[needs_ref].append(name)
    if not groups[False] and not groups[True]:
        return result
    os.environ["RAGAS_DO_NOT_TRACK"] = "true"  # telemetry off, before ragas is imported
    from ragas import SingleTurnSample

    embeddings = _ragas_embeddings(embedder) if embedder is not None else None
    judge_llm = _judge_llm(judge) if judge is not None else None
    for needs_ref, names in groups.items():
        if not names:
            continue
        todo = [r for r in all_rows if not r.error and (not needs_ref or references.get(r.qid))]
        for r in all_rows:
            if not r.error and needs_ref and not references.get(r.qid):
                for name in names:
                    r.scores[name] = None
                    r.not_applicable[name] = "no reference answer for this query"
        if not todo:
            continue
        samples = [SingleTurnSample(user_input=r.question, response=r.text or "", retrieved_contexts=r.contexts or [""],
                                    retrieved_context_ids=r.context_ids, reference_context_ids=list(relevant.get(r.qid, [])),
                                    reference=references.get(r.qid)) for r in todo]
        scores, failures, n_as = _evaluate(samples, names, judge_llm, embeddings, judge, progress)
        for r, s, f, na in zip(todo, scores, failures, n_as):
            r.scores.update(s)
            r.failures.update(f)
            r.not_applicable.update(na)
    return result
