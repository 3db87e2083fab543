"""Loaders for evaluation and training data in public formats: BEIR directories, jobs corpora, STS-B CSVs.

A BEIR dir is `queries.jsonl` (`_id`, `text`) + `qrels/<split>.tsv` (`query-id corpus-id score`, header line) and,
unless a corpus is given separately, `corpus.jsonl(.gz)` (`_id`, `title`, `text`). A jobs corpus is JSONL of listings
(`id, title, company, location, description`, …); a listing's text is its header line, a blank line, the description.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from collections.abc import Sequence
from pathlib import Path

from rag_app.errors import ConfigError, SourceError
from rag_app.records import IRSplit, JobListing, ScoredPairs, TrainingData


def _jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def is_beir_dir(path: Path) -> bool:
    return (Path(path) / "queries.jsonl").exists() and (Path(path) / "qrels").is_dir()


def is_stsb_dir(path: Path) -> bool:
    return (Path(path) / "train.csv").exists() and (Path(path) / "dev.csv").exists()


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """BEIR qrels: `query-id<TAB>corpus-id<TAB>score` lines, header line optional, extra columns ignored."""
    if not Path(path).is_file():
        raise SourceError(f"no qrels file {path}: no such file")
    graded: dict[str, dict[str, int]] = {}
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        cells = [c.strip() for c in line.split("\t")]
        if not line.strip() or (n == 1 and cells[0] == "query-id"):
            continue
        try:
            qid, doc, grade = cells[0], cells[1], int(float(cells[2]))
        except (IndexError, ValueError):
            raise SourceError(f"{path}:{n}: expected 'query-id<TAB>corpus-id<TAB>score', got {line[:80]!r}") from None
        graded.setdefault(qid, {})[doc] = grade
    return graded


def jobs_corpus(path: Path) -> dict[str, str]:
    """Listing id -> 'header\\n\\ndescription' for a jobs JSONL corpus."""
    out = {}
    for row in _jsonl(Path(path)):
        fields = {k: row.get(k) or None for k in ("company", "location", "salary", "work_type")}
        listing = JobListing(id=str(row["id"]), title=row.get("title") or "", description=row.get("description") or "", **fields)
        out[listing.id] = listing.document_text()
    return out


def beir_corpus(directory: Path) -> dict[str, str]:
    path = next((p for p in (Path(directory) / "corpus.jsonl", Path(directory) / "corpus.jsonl.gz") if p.exists()), None)
    if path is None:
        raise SourceError(f"{directory} has no corpus.jsonl(.gz); pass --corpus with a jobs JSONL or BEIR corpus file")
    return {str(d["_id"]): f"{d.get('title') or ''} {d.get('text') or ''}".strip() for d in _jsonl(path)}


def load_corpus(path: Path) -> dict[str, str]:
    """A corpus file: BEIR-style rows (`_id`, `text`) or jobs listings (`id`, `description`)."""
    path = Path(path)
    if path.is_dir():
        return beir_corpus(path)
    first = _jsonl(path)[:1] if path.exists() else []
    if not first:
        raise SourceError(f"corpus {path} is missing or empty")
    return beir_corpus(path.parent) if "_id" in first[0] and path.name.startswith("corpus") else jobs_corpus(path)


def load_corpora(paths: Sequence[Path]) -> dict[str, str]:
    """The union of several corpus files (e.g. jobs_a + jobs_b + distractors). An id in two files is an error: which
    listing would a judgment of it mean?"""
    union: dict[str, str] = {}
    origin: dict[str, Path] = {}
    for path in dict.fromkeys(Path(p) for p in paths):
        for doc_id, text in load_corpus(path).items():
            if doc_id in origin:
                raise SourceError(f"listing id {doc_id!r} is in both {origin[doc_id]} and {path}: ids must be unique across corpus files")
            union[doc_id], origin[doc_id] = text, Path(path)
    return union


def query_fields(directory: Path, wanted: Sequence[str] = (), default: Sequence[str] = ("style",), max_values: int = 50) -> dict[str, dict[str, str]]:
    """Per-query values of fields to break a report down by: the `default` fields that the queries carry, plus every
    `wanted` one (a ConfigError when no query has it, or it has more than `max_values` values). A BEIR dir's fields are the columns of queries.jsonl; a
    gen-pairs dir has `style` (its styles.json, qid -> style)."""
    directory = Path(directory)
    if is_beir_dir(directory):
        rows = {str(q["_id"]): q for q in _jsonl(directory / "queries.jsonl")}
    elif (directory / "styles.json").exists():
        rows = {qid: {"style": style} for qid, style in json.loads((directory / "styles.json").read_text(encoding="utf-8")).items()}
    else:
        rows = {}
    out: dict[str, dict[str, str]] = {}
    for name in dict.fromkeys([*default, *wanted]):
        values = {qid: str(row[name]) for qid, row in rows.items() if row.get(name) not in (None, "")}
        if not values and name in wanted:
            known = sorted({k for row in rows.values() for k in row} - {"_id", "text"})
            raise ConfigError(f"--segment-by {name}: no query in {directory} has that field (fields: {', '.join(known) or 'none'})")
        distinct = len(set(values.values()))
        if distinct > max_values and name in wanted:
            raise ConfigError(f"--segment-by {name}: {distinct} distinct values (at most {max_values}); segment by a categorical field")
        if values and distinct <= max_values:
            out[name] = values
    return out


def load_beir(directory: Path, split: str = "test", corpus: dict[str, str] | None = None) -> IRSplit:
    directory = Path(directory)
    graded = read_qrels(directory / "qrels" / f"{split}.tsv")
    queries = {str(q["_id"]): q["text"] for q in _jsonl(directory / "queries.jsonl")}  # all: queries without qrels are reported
    corpus = corpus if corpus is not None else beir_corpus(directory)
    relevant = {q: [d for d, s in docs.items() if s >= 1] for q, docs in graded.items() if q in queries}
    return IRSplit(queries=queries, corpus=corpus, relevant_docs=relevant, graded=graded)


def beir_training_data(directory: Path, seed: int = 42, val_fraction: float = 0.1, val_corpus_size: int | None = 1000) -> TrainingData:
    """Train qrels -> train/val (split by query, seeded; BEIR ships no dev split for SciFact); test qrels -> test.

    The val split only picks the best checkpoint, and it is evaluated before training and after every epoch, so its
    corpus is the val queries' relevant documents plus a seeded sample of `val_corpus_size` others (None: the whole
    corpus). On SciFact that is 1,000 of 5,183 abstracts: each val pass costs a fifth. The test split, the figure
    reported against published numbers, always ranks the whole corpus.
    """
    directory = Path(directory)
    corpus = beir_corpus(directory)
    train_all = load_beir(directory, "train", corpus)
    qids = sorted(train_all.relevant_docs)
    random.Random(seed).shuffle(qids)
    n_val = max(1, int(len(qids) * val_fraction))

    def subset(ids: list[str], docs: dict[str, str]) -> IRSplit:
        return IRSplit(queries={q: train_all.queries[q] for q in ids}, corpus=docs, relevant_docs={q: train_all.relevant_docs[q] for q in ids})

    val_ids = qids[:n_val]
    val_docs = corpus
    if val_corpus_size is not None and val_corpus_size < len(corpus):
        keep = {d for q in val_ids for d in train_all.relevant_docs[q]}
        others = sorted(set(corpus) - keep)
        keep |= set(random.Random(f"{seed}:val-corpus").sample(others, k=min(val_corpus_size, len(others))))
        val_docs = {d: t for d, t in corpus.items() if d in keep}
    test = load_beir(directory, "test", corpus) if (directory / "qrels" / "test.tsv").exists() else None
    return TrainingData(kind="ir", name=str(directory), train=subset(qids[n_val:], corpus), val=subset(val_ids, val_docs), test=test,
                        meta={"generator": "beir-train-qrels", "val_fraction": val_fraction, "val_corpus_size": len(val_docs)})


def _sts(path: Path) -> ScoredPairs:
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return ScoredPairs(sentence1=[r["sentence1"] for r in rows], sentence2=[r["sentence2"] for r in rows],
                       score=[float(r["score"]) / 5.0 for r in rows])


def stsb_training_data(directory: Path) -> TrainingData:
    directory = Path(directory)
    test = _sts(directory / "test.csv") if (directory / "test.csv").exists() else None
    return TrainingData(kind="scored", name=str(directory), train=_sts(directory / "train.csv"), val=_sts(directory / "dev.csv"),
                        test=test, meta={"generator": "stsb", "score_scale": "score / 5"})
