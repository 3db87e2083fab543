"""Bring your own pairs: a job platform's search-log judgements as training data, alone or beside generated pairs.

A pairs file is CSV (header row) or JSONL, with rows of one of two shapes:

- `query, listing_id[, label]`: label 1 (the default) = relevant, 0 = not relevant (an impression nobody clicked, a
  rejected match). A query's 0-labelled listings become its judged negatives.
- `query, positive[, negative]`: a triplet; `positive` and `negative` are listing ids.

Listing ids resolve against the listings the caller passes (the ingest source's, or a gen-pairs dir's corpora); a row
naming an unknown id, an empty query or a label other than 0/1 is rejected and counted, with an example, never
dropped silently. Splits stay leakage-safe: every listing keeps the split of its leakage group (finetune.split), a
query lives in one split (the one holding most of its relevant listings; train on a tie), and judgements that would
cross splits (a relevant or negative listing of another split) are dropped and counted. Judged negatives reach
training as grade-0 entries of the split's `graded` qrels (BEIR's 'judged, not relevant') and pass the same
exclusions as mined ones (finetune.negatives).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_app.errors import ConfigError
from rag_app.records import IRSplit, TrainingData

SPLITS = ("train", "val", "test")
SHAPES = "CSV/JSONL columns `query, listing_id[, label]` or `query, positive[, negative]`"


@dataclass(frozen=True)
class Judgement:
    query: str
    listing_id: str
    label: int  # 1 relevant, 0 not
    where: str  # file:line, for reports


@dataclass
class FileReport:
    """What the pairs files held and what became of it: counts by outcome, one example per rejection reason."""

    files: dict[str, str] = field(default_factory=dict)  # path -> sha256[:16]
    rows: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)

    def reject(self, reason: str, example: str) -> None:
        self.counts[f"rejected: {reason}"] += 1
        self.examples.setdefault(reason, example)

    def rejected(self) -> int:
        return sum(v for k, v in self.counts.items() if k.startswith("rejected: "))

    def as_meta(self) -> dict[str, Any]:
        return {"files": self.files, "rows": self.rows, **dict(self.counts), "examples": self.examples}


def _rows(path: Path) -> list[tuple[int, dict[str, Any] | None]]:
    """(line number, row) per data row; None for a JSONL line that is not a JSON object."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        out: list[tuple[int, dict[str, Any] | None]] = []
        for no, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                out.append((no, row if isinstance(row, dict) else None))
        return out
    if path.suffix.lower() not in (".csv", ".tsv"):
        raise ConfigError(f"{path}: a pairs file is .csv, .tsv or .jsonl ({SHAPES})")
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
    return [(no, row) for no, row in enumerate(reader, start=2)]


def _label(value: Any) -> int | None:
    text = str(value).strip().lower()
    return {"1": 1, "0": 0, "1.0": 1, "0.0": 0, "true": 1, "false": 0}.get(text)


def read_pairs_files(paths: Sequence[Path], report: FileReport | None = None) -> tuple[list[Judgement], FileReport]:
    """All judgements of `paths`, in file order; malformed rows are rejected into the report."""
    report = report or FileReport()
    out: list[Judgement] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise ConfigError(f"no pairs file at {path}")
        report.files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        for no, raw in _rows(path):
            report.rows += 1
            where = f"{path.name}:{no}"
            row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None} if raw is not None else None
            if row is None:
                report.reject("not a JSON object", where)
                continue
            if "listing_id" not in row and "positive" not in row:
                raise ConfigError(f"{where}: no listing_id or positive column; a pairs file has {SHAPES}")
            query = str(row.get("query") or "").strip()
            if not query:
                report.reject("empty query", where)
                continue
            if "positive" in row:
                found = [(row.get("positive"), 1), (row.get("negative"), 0)]
                found = [(str(lid).strip(), lab) for lid, lab in found if lid is not None and str(lid).strip()]
                if not found or found[0][1] != 1:
                    report.reject("triplet without a positive", where)
                    continue
            else:
                label = _label(row["label"]) if row.get("label") not in (None, "") else 1
                if label is None:
                    report.reject("label is not 0 or 1", f"{where} label={row.get('label')!r}")
                    continue
                found = [(str(row.get("listing_id") or "").strip(), label)]
                if not found[0][0]:
                    report.reject("empty listing_id", where)
                    continue
            out.extend(Judgement(query, lid, lab, where) for lid, lab in found)
    return out, report


def file_splits(judgements: Sequence[Judgement], texts: dict[str, str], split_of: dict[str, str], report: FileReport,
                aliases: dict[str, str] | None = None, dropped: set[str] | None = None) -> dict[str, IRSplit]:
    """Judgements -> train/val/test IR splits (queries, relevant docs, grade-0 judged negatives; corpus left empty).

    `aliases`: ids the source folded into another listing (near-duplicates) -> the kept id; `dropped`: ids the source
    rejected (named in the rejection reason)."""
    by_query: dict[str, dict[str, int]] = {}
    for j in judgements:
        lid = (aliases or {}).get(j.listing_id, j.listing_id)
        if lid != j.listing_id:
            report.counts["ids of folded near-duplicates (mapped to the kept listing)"] += 1
        if lid not in texts:
            reason = "listing rejected by ingest" if lid in (dropped or ()) else "unknown listing id"
            report.reject(reason, f"{j.where} {j.listing_id!r}")
            continue
        grades = by_query.setdefault(j.query, {})
        if grades.get(lid, j.label) != j.label:
            report.counts["conflicting labels (kept as relevant)"] += 1
        grades[lid] = max(grades.get(lid, 0), j.label)
    splits = {s: IRSplit(queries={}, corpus={}, relevant_docs={}) for s in SPLITS}
    for query, grades in by_query.items():
        positives = [d for d, g in grades.items() if g == 1]
        if not positives:
            report.counts["queries without a relevant listing (skipped)"] += 1
            continue
        votes = Counter(split_of[d] for d in positives)
        home = max(SPLITS, key=lambda s: votes[s])  # first of train, val, test on a tie
        kept = {d: g for d, g in grades.items() if split_of[d] == home}
        report.counts["judgements across splits (dropped)"] += len(grades) - len(kept)
        qid = f"f-{hashlib.sha1(query.encode()).hexdigest()[:12]}"
        split = splits[home]
        split.queries[qid] = query
        split.relevant_docs[qid] = [d for d, g in kept.items() if g == 1]
        split.graded[qid] = kept
        report.counts[f"{home} queries"] += 1
        report.counts[f"{home} relevant"] += len(split.relevant_docs[qid])
        report.counts[f"{home} judged negatives"] += len(kept) - len(split.relevant_docs[qid])
    return splits


def with_file_pairs(judgements: Sequence[Judgement], report: FileReport, texts: dict[str, str], split_of: dict[str, str],
                    groups: dict[str, str], base: TrainingData | None = None, name: str = "pairs-file",
                    meta: dict[str, Any] | None = None, aliases: dict[str, str] | None = None,
                    dropped: set[str] | None = None) -> TrainingData:
    """TrainingData from the judgements, merged into `base` (a gen-pairs dataset over the same listings) when given.

    `texts`: listing id -> document text; `split_of`: listing id -> split; `groups`: listing id -> leakage group;
    `aliases`, `dropped`: see `file_splits`.
    Every split's corpus holds all listings of that split. Raises ConfigError when no judgement survives.
    """
    splits = file_splits(judgements, texts, split_of, report, aliases, dropped)
    if not any(s.queries for s in splits.values()):
        examples = "; ".join(f"{reason}: {ex}" for reason, ex in report.examples.items())
        raise ConfigError(f"no usable pairs in {', '.join(report.files)} ({report.rejected()} of {report.rows} rows rejected"
                          f"{': ' + examples if examples else ''}); check the listing ids against --source")
    merged = {}
    for name_, split in splits.items():
        old = getattr(base, name_, None) if base is not None else None
        corpus = {d: t for d, t in texts.items() if split_of.get(d) == name_}
        if old is not None:
            split = IRSplit(queries={**old.queries, **split.queries}, corpus={**old.corpus, **corpus},
                            relevant_docs={**old.relevant_docs, **split.relevant_docs}, graded={**old.graded, **split.graded})
        else:
            split = split.model_copy(update={"corpus": corpus})
        merged[name_] = split
    file_meta = {"pairs_files": report.as_meta()}
    if base is not None:
        return base.model_copy(update={"name": f"{base.name} + {name}", "meta": {**base.meta, **file_meta}, **merged})
    return TrainingData(kind="ir", name=name, groups=groups, meta={"generator": "pairs-file", **(meta or {}), **file_meta}, **merged)


def listings_of(data: TrainingData) -> tuple[dict[str, str], dict[str, str]]:
    """A gen-pairs dataset's listings: (id -> document text, id -> split), from its split corpora."""
    texts: dict[str, str] = {}
    split_of: dict[str, str] = {}
    for name in SPLITS:
        split = getattr(data, name)
        for d, t in (split.corpus.items() if isinstance(split, IRSplit) else ()):
            texts[d], split_of[d] = t, name
    return texts, split_of
