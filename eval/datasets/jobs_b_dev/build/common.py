"""Shared paths, readers and checks for the jobs_b dev-set build scripts (stdlib only)."""

from __future__ import annotations

import csv
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DATASET_DIR = Path(__file__).resolve().parents[1]  # eval/datasets/jobs_b_dev (repo: ids, queries, grades, code)
CORPUS = Path("/work/shared/data/jobs/jobs_b.jsonl")
PRIVATE = Path("/work/jobsb")  # outside any repo: everything that shows listing text
STYLES = ("keyword", "natural", "constraint", "paraphrase")
MIN_WORDS, MAX_WORDS = 3, 30


@dataclass(frozen=True)
class Query:
    qid: str
    style: str
    text: str


def excerpt(text: str, chars: int) -> str:
    """The first `chars` characters of `text` as a Markdown block quote, marked when cut."""
    cut = text[:chars] + (" [...]" if len(text) > chars else "")
    return "> " + cut.replace("\n", "\n> ")


def load_corpus(path: Path = CORPUS) -> dict[str, dict]:
    """id -> record, in id order (the order every script indexes the corpus in)."""
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return {r["id"]: r for r in sorted(rows, key=lambda r: r["id"])}


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def write_tsv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        f.writelines("\t".join(str(v) for v in row) + "\n" for row in rows)


def read_targets(path: Path = DATASET_DIR / "targets.tsv") -> dict[str, tuple[str, str]]:
    """query-id -> (target corpus-id, assigned style)."""
    return {r["query-id"]: (r["corpus-id"], r["style"]) for r in read_tsv(path)}


def read_queries(paths: list[Path], targets: dict[str, tuple[str, str]], corpus: dict[str, dict]) -> list[Query]:
    """Annotators' `query-id<TAB>style<TAB>text` lines; exits listing every problem (warnings for soft rules)."""
    queries: dict[str, Query] = {}
    errors: list[str] = []
    for path in paths:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 3:
                errors.append(f"{path}:{n}: expected 3 tab-separated fields, got {len(parts)}")
                continue
            qid, style, text = (p.strip() for p in parts)
            if qid not in targets:
                errors.append(f"{path}:{n}: unknown query-id {qid!r}")
            elif style != targets[qid][1]:
                errors.append(f"{path}:{n}: {qid} has style {style!r}, assigned {targets[qid][1]!r}")
            elif qid in queries:
                errors.append(f"{path}:{n}: duplicate query-id {qid}")
            else:
                queries[qid] = Query(qid, style, text)
    for q in queries.values():
        words = len(q.text.split())
        if not MIN_WORDS <= words <= MAX_WORDS:
            errors.append(f"{q.qid}: {words} words (allowed {MIN_WORDS}-{MAX_WORDS})")
        company = corpus[targets[q.qid][0]]["company"].lower()
        core = re.sub(r"\b(inc|llc|corp|co|ltd|the|group|company)\b\.?|[^\w\s&]", " ", company).split()
        if core and re.search(r"\b" + re.escape(" ".join(core)) + r"\b", q.text.lower()):
            print(f"warning: {q.qid} may name the company ({company!r})", file=sys.stderr)
    if errors:
        raise SystemExit("query file problems:\n  " + "\n  ".join(errors))
    missing = sorted(set(targets) - set(queries))
    if missing:
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        print(f"note: {len(missing)} targets have no query yet: {', '.join(missing[:10])}{more}", file=sys.stderr)
    return sorted(queries.values(), key=lambda q: q.qid)
