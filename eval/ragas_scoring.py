"""Answer quality, part two: score the generated answers (eval.answers) with ragas.

Metrics (our name <- how):
- always: `citation_precision` (eval.answers), `id_context_precision` / `id_context_recall` <- ragas
  `IDBasedContextPrecision` / `IDBasedContextRecall` (the ids of the listings placed in the answer's context against
  the qrels' relevant ids);
- with a reference answer for the query: `semantic_similarity` <- ragas `SemanticSimilarity` (our embedder);
- with a judge LLM: `faithfulness`, `answer_relevancy` (ragas `ResponseRelevancy`, our embedder),
  `llm_context_precision` (ragas `LLMContextPrecisionWithoutReference`) and, with a reference, `llm_context_recall`
  (ragas `LLMContextRecall`).

Everything goes through ragas `evaluate` with typed `SingleTurnSample` rows and an explicit `RunConfig`, with
`raise_exceptions=False`: ragas then scores a metric that raised as NaN, like one that was undefined. Which is which
comes from ragas' own trace tree of the run (`EvaluationResult.ragas_traces`: evaluation -> `row i` -> one run per
metric): a metric run that raised never got an output. Why it raised comes from a callback handler passed to
`evaluate(callbacks=...)`, which ragas' metric chains report their errors to (`on_chain_error`). A failed row is kept,
marked with that reason and left out of the mean, whose n is reported. A metric ragas would otherwise fill with a
default (an OpenAI model, OpenAI embeddings) is never run without the judge / embedder passed in explicitly. ragas is
imported lazily (seconds) and its telemetry is off.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.callbacks import BaseCallbackHandler  # comes with ragas (the eval extra); light, unlike ragas itself

from eval.answers import (
    AnswerEval,
    AnswerRow,
    JudgeConfig,
    citation_precision,
    constraint_satisfaction,
    delivered_unsupported,
    unsupported_rate,
)


class RagasMetric(NamedTuple):
    """A ragas metric class and what it needs to run."""

    cls_name: str
    needs_judge: bool = False
    needs_reference: bool = False
    needs_embeddings: bool = False

    def missing(self, judge: JudgeConfig | None, has_reference: bool, has_embedder: bool) -> str | None:
        """Why this metric cannot run here, or None."""
        if self.needs_judge and judge is None:
            return "needs a judge LLM (--judge openai with an OpenAI-compatible endpoint)"
        if self.needs_reference and not has_reference:
            return "needs reference answers (none in this query set: add `reference` to queries.jsonl or a references.jsonl)"
        if self.needs_embeddings and not has_embedder:
            return "needs an embedder"
        return None


RAGAS_METRICS: dict[str, RagasMetric] = {
    "id_context_precision": RagasMetric("IDBasedContextPrecision"),
    "id_context_recall": RagasMetric("IDBasedContextRecall"),
    "semantic_similarity": RagasMetric("SemanticSimilarity", needs_reference=True, needs_embeddings=True),
    "faithfulness": RagasMetric("Faithfulness", needs_judge=True),
    "answer_relevancy": RagasMetric("ResponseRelevancy", needs_judge=True, needs_embeddings=True),
    "llm_context_precision": RagasMetric("LLMContextPrecisionWithoutReference", needs_judge=True),
    "llm_context_recall": RagasMetric("LLMContextRecall", needs_judge=True, needs_reference=True),
}
# Judge-free metrics computed from the answers themselves: name -> (function of the row, what it is, why it may not apply)
DETERMINISTIC = {
    "unsupported_rate": (unsupported_rate, "share of model-written sentences the groundedness check removed (raw model output)",
                         "the model wrote nothing (no LLM, or an outage)"),
    "delivered_unsupported": (delivered_unsupported, "model sentences delivered with a fact in no listing of the answer (re-checked; target 0)",
                              "the model delivered no sentence"),
    "constraint_satisfaction": (constraint_satisfaction, "share of cited listings meeting every constraint understood from the question",
                                "no constraint understood, or nothing cited"),
}
ANSWER_METRICS = ("citation_precision", *DETERMINISTIC, *RAGAS_METRICS)


def score_answers(rows: dict[str, dict[str, AnswerRow]], relevant: Mapping[str, Sequence[str]], references: Mapping[str, str] | None = None,
                  embedder: Any = None, judge: JudgeConfig | None = None, progress: bool = True, llm: str = "",
                  embedder_name: str | None = None) -> AnswerEval:
    """Score every answered row; returns the rows (scores, failures marked) with which metrics ran and why others did not."""
    references = references or {}
    result = AnswerEval(rows=rows, llm=llm, judge=judge.describe() if judge else None, embedder=embedder_name if embedder is not None else None)
    result.ran["citation_precision"] = "cited ids that are relevant in the qrels (rows that cite nothing are left out)"
    result.ran.update({name: what for name, (_, what, _) in DETERMINISTIC.items()})
    all_rows = [r for by_q in rows.values() for r in by_q.values()]
    for r in all_rows:
        if r.error:
            r.scores.update(dict.fromkeys(ANSWER_METRICS))
            r.failures["generation"] = r.error
            continue
        r.scores["citation_precision"] = citation_precision(r.cited_ids, set(relevant.get(r.qid, [])))
        if r.scores["citation_precision"] is None:
            r.not_applicable["citation_precision"] = "the answer cites no listing"
        for name, (metric, _, why_not) in DETERMINISTIC.items():
            r.scores[name] = metric(r)
            if r.scores[name] is None:
                r.not_applicable[name] = why_not
    has_ref = any(references.get(r.qid) for r in all_rows)
    groups: dict[bool, list[str]] = {False: [], True: []}  # by "needs a reference"
    for name, spec in RAGAS_METRICS.items():
        why = spec.missing(judge, has_ref, embedder is not None)
        if why:
            result.skipped[name] = why
            continue
        result.ran[name] = f"ragas {spec.cls_name}" + (f" judged by {judge.describe()}" if spec.needs_judge and judge else "") + \
            (f" with {embedder_name or 'our embedder'}" if spec.needs_embeddings else "")
        groups[spec.needs_reference].append(name)
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
                r.scores.update(dict.fromkeys(names))
                r.not_applicable.update(dict.fromkeys(names, "no reference answer for this query"))
        if not todo:
            continue
        samples = [SingleTurnSample(user_input=r.question, response=r.text or "", retrieved_contexts=r.contexts or [""],
                                    retrieved_context_ids=r.context_ids, reference_context_ids=list(relevant.get(r.qid, [])),
                                    reference=references.get(r.qid)) for r in todo]
        for r, outcome in zip(todo, _evaluate(samples, names, judge_llm, embeddings, judge, progress)):
            for name, (score, failure, n_a) in outcome.items():
                r.scores[name] = score
                if failure:
                    r.failures[name] = failure
                if n_a:
                    r.not_applicable[name] = n_a
    return result


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


Outcome = tuple[float | None, str | None, str | None]  # (score, why it failed, why it does not apply)


def _evaluate(samples: list[Any], names: list[str], judge_llm: Any, embeddings: Any, judge: JudgeConfig | None,
              progress: bool) -> list[dict[str, Outcome]]:
    """ragas evaluate over typed rows: per row, metric -> (score or None, why it failed, why it does not apply)."""
    from ragas import EvaluationDataset, RunConfig, evaluate

    if judge_llm is None and any(RAGAS_METRICS[n].needs_judge for n in names):
        raise ValueError("judge metrics need an explicit judge LLM; ragas would otherwise fall back to OpenAI")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import ragas.metrics as rm

        metrics = []
        for name in names:
            metric = getattr(rm, RAGAS_METRICS[name].cls_name)()
            if RAGAS_METRICS[name].needs_embeddings:
                metric.embeddings = embeddings
            metrics.append(metric)  # a judge metric's llm stays None: evaluate sets it from the explicit judge below
        run_config = RunConfig(timeout=int(judge.timeout_s * 3) if judge else 60, max_retries=judge.max_retries if judge else 1,
                               max_wait=5, max_workers=judge.max_workers if judge else 4, seed=judge.seed if judge else 0)
        errors = _MetricErrors()
        result = evaluate(EvaluationDataset(samples=samples), metrics=metrics, llm=judge_llm, embeddings=embeddings, run_config=run_config,
                          raise_exceptions=False, show_progress=progress, callbacks=[errors])
    runs = _metric_runs(result.ragas_traces)
    return [{name: _outcome(name, runs.get((i, metric.name)), errors) for name, metric in zip(names, metrics)} for i in range(len(samples))]


def _outcome(name: str, run: Any, errors: _MetricErrors) -> Outcome:
    """One row's metric from its run in ragas' trace: a score, a failure (it raised: no output) or undefined (NaN)."""
    judged = RAGAS_METRICS[name].needs_judge
    if run is None or "output" not in run.outputs:
        why = "ragas raised before the metric started" if run is None else errors.by_run.get(run.run_id, "raised without a recorded reason")
        return None, f"judge failed: {why}" if judged else why, None
    value = run.outputs["output"]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if judged:
            return None, "judge gave no usable verdict (ragas returned NaN)", None
        return None, None, "undefined for this row (e.g. no context listing; ragas returned NaN)"
    return float(value), None, None


def _metric_runs(traces: Mapping[str, Any]) -> dict[tuple[int, str], Any]:
    """(row index, metric name) -> that metric's run in ragas' trace tree (evaluation -> `row i` -> metric runs)."""
    from ragas.callbacks import ChainType

    rows = {run.run_id: run.metadata["row_index"] for run in traces.values() if run.metadata.get("type") == ChainType.ROW}
    return {(rows[run.parent_run_id], run.name): run for run in traces.values()
            if run.metadata.get("type") == ChainType.METRIC and run.parent_run_id in rows}


class _MetricErrors(BaseCallbackHandler):
    """A langchain callback handler for `evaluate(callbacks=...)`: ragas' chains report what they raised to
    `on_chain_error`; kept by run id, the key of ragas' trace tree."""

    def __init__(self) -> None:
        super().__init__()
        self.by_run: dict[str, str] = {}

    def on_chain_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self.by_run[str(run_id)] = f"{type(error).__name__}: {str(error)[:300]}"
