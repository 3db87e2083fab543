"""Answer quality, part one: one answer per (query, retriever) through an injected answer function, and the records
the scores land in (scored by eval.ragas_scoring).

The chat pipeline is not imported here (pipelines meet only through records): the caller passes
`answer_fn(question, retriever_label) -> Answer` (`rag_app.records.Answer`), built from the same retrievers as the run.
A failing call marks its row (`AnswerRow.error`); the other rows go on. `citation_precision` (cited ids that are
relevant in the qrels; undefined for an answer that cites nothing) needs no model and is computed here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from rag_app.records import Answer

logger = logging.getLogger(__name__)
AnswerFn = Callable[[str, str], Answer]


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
    generated_sentences: int = 0  # what the model wrote, and how many of those sentences the groundedness check removed
    unsupported_removed: int = 0
    model_text: str = ""  # the model-written sentences that reached the answer
    understood: list[str] = field(default_factory=list)  # constraints applied from the question (labels)
    unmet: dict[str, list[str]] = field(default_factory=dict)  # source id -> understood constraints it misses
    texts: dict[str, str] = field(default_factory=dict)  # source id -> the listing text the answer was checked against
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
                row.generated_sentences, row.unsupported_removed, row.model_text = answer.generated_sentences, answer.unsupported_removed, answer.model_text
                row.understood = [c.label for c in answer.understood_filters if c.key not in answer.ignored_filters]
                row.unmet = {s.id: list(s.unmet) for s in answer.sources}
                row.texts = {s.id: f"{s.header()}\n{s.chunk}" for s in answer.sources}
                row.contexts = [f"{s.header()}\n{s.chunk[:context_chars] if context_chars else s.chunk}" for s in used]
            rows[label][qid] = row
    return rows


def citation_precision(cited: Sequence[str], relevant: set[str]) -> float | None:
    """Share of cited listings that are relevant; None when nothing is cited (undefined, not zero)."""
    cited = list(dict.fromkeys(cited))
    return sum(c in relevant for c in cited) / len(cited) if cited else None


def unsupported_rate(row: AnswerRow) -> float | None:
    """Share of the sentences the model wrote that the groundedness check removed (on the raw model output); None when
    the model wrote nothing (no LLM, or an outage)."""
    return row.unsupported_removed / row.generated_sentences if row.generated_sentences else None


def delivered_unsupported(row: AnswerRow) -> float | None:
    """Model-written sentences that reached the answer and still state a fact no listing of the answer states: an
    independent re-check of the delivered text (the target is 0). None when the model delivered nothing."""
    from rag_app.grounding import check_text

    if not row.model_text:
        return None
    return float(len(check_text(row.model_text, row.texts, row.question).removed))


def constraint_satisfaction(row: AnswerRow) -> float | None:
    """Share of the cited listings that meet every constraint understood from the question; None without constraints."""
    cited = list(dict.fromkeys(row.cited_ids))
    if not row.understood or not cited:
        return None
    return sum(not row.unmet.get(c) for c in cited) / len(cited)
