"""(query, listing) pair generation: `template` (offline, deterministic by seed) and `llm` (any OpenAI-compatible LLM).

Output is a dataset directory in llama-index's `EmbeddingQAFinetuneDataset` shape, one file per split:
`train.json`, `val.json`, `test.json` = {"queries": {qid: text}, "corpus": {listing_id: text}, "relevant_docs":
{qid: [listing_id]}, "mode": "text"}, plus `styles.json` (qid -> query style), `groups.json` (listing -> leakage group)
and `meta.json` (generator, settings, seed, counts, source hash).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from finetune.keyphrases import extract
from finetune.split import FRACTIONS, listing_splits
from finetune.templates import STYLE_WEIGHTS, STYLES, core_role, facts_of, render
from rag_app.errors import ConfigError
from rag_app.records import IRSplit, JobListing, TrainingData
from rag_app.settings import DEFAULT_LLM_PROMPT

logger = logging.getLogger(__name__)


class TemplateGenerator:
    """Offline queries from templates over mined facts (distinctive terms or keyphrases, duty lines, place, pay, workplace,
    seniority). `keyphrases` picks the term miner (finetune.keyphrases); `specifics_weight` > 0 adds the `specifics` style."""

    name = "template"

    def __init__(self, listings: Sequence[JobListing], queries_per_listing: int = 3, seed: int = 42, n_terms: int = 8,
                 keyphrases: str = "tfidf", specifics_weight: float = 0.0, model: str | None = None) -> None:
        self.k, self.seed = queries_per_listing, seed
        self.terms = extract(keyphrases, listings, n_terms, model)
        self.styles, self.weights = STYLES, STYLE_WEIGHTS
        if specifics_weight > 0:
            self.styles, self.weights = (*STYLES, "specifics"), (*STYLE_WEIGHTS, specifics_weight)

    def __call__(self, listing: JobListing) -> list[tuple[str, str]]:
        rng = random.Random(f"{self.seed}:{listing.id}")
        facts = facts_of(listing, self.terms.get(listing.id, []))
        styles = list(dict.fromkeys(rng.choices(self.styles, weights=self.weights, k=self.k * 3)))
        title = listing.title.strip().lower()
        out: list[tuple[str, str]] = []
        for style in styles + [s for s in self.styles if s not in styles]:
            query = render(style, facts, rng)
            if not query:
                continue
            query = " ".join(query.split())
            if query.lower() in (title, core_role(listing.title).lower()) or any(query == q for q, _ in out):
                continue  # never the title itself
            out.append((query, style))
            if len(out) == self.k:
                break
        return out


class LLMGenerator:
    """N queries per listing from an LLM; resumable through a JSONL checkpoint, bounded concurrency and retries."""

    name = "llm"

    def __init__(self, complete: Callable[[str], str], checkpoint: Path, n: int = 3, prompt: str = DEFAULT_LLM_PROMPT,
                 concurrency: int = 4, retries: int = 3) -> None:
        self.complete, self.checkpoint, self.n, self.prompt = complete, checkpoint, n, prompt
        self.concurrency, self.retries = concurrency, retries
        self.done = self._load_checkpoint()

    def _load_checkpoint(self) -> dict[str, list[str]]:
        done = {}
        if self.checkpoint.exists():
            for line in self.checkpoint.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    done[row["id"]] = row["queries"]
                except (json.JSONDecodeError, KeyError):
                    continue  # a line torn by a crash is redone
        return done

    def _one(self, listing: JobListing) -> list[str]:
        text = self.prompt.format(n=self.n, listing=listing.document_text(1500))
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                lines = [re.sub(r"^\s*(?:\d+[.)]|[-*•])\s*", "", x).strip().strip('"') for x in self.complete(text).splitlines()]
                queries = [q for q in lines if 2 <= len(q.split()) <= 40 and q.lower() != listing.title.lower()]
                if queries:
                    return queries[: self.n]
                last = ValueError("no usable query lines in the reply")
            except Exception as exc:  # transient endpoint errors are retried with backoff
                last = exc
            time.sleep(min(2 ** attempt * 0.2, 5))
        raise RuntimeError(f"listing {listing.id}: {last}")

    def run(self, listings: Sequence[JobListing], progress: bool = True) -> dict[str, list[str]]:
        todo = [x for x in listings if x.id not in self.done]
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        failures = 0
        with self.checkpoint.open("a", encoding="utf-8") as fh, ThreadPoolExecutor(self.concurrency) as pool, \
                tqdm(total=len(todo), desc="llm queries", disable=not progress) as bar:
            for listing, result in zip(todo, pool.map(self._safe, todo)):
                bar.update(1)
                if isinstance(result, Exception):
                    failures += 1
                    logger.warning("%s", result)
                    continue
                self.done[listing.id] = result
                fh.write(json.dumps({"id": listing.id, "queries": result}) + "\n")
                fh.flush()  # a crash loses at most the in-flight listings
        if failures:
            logger.warning("%d listings got no queries after %d retries; re-run to retry them", failures, self.retries)
        return self.done

    def _safe(self, listing: JobListing) -> list[str] | Exception:
        try:
            return self._one(listing)
        except Exception as exc:
            return exc


def build_dataset(listings: Sequence[JobListing], queries: dict[str, list[tuple[str, str]]], out: Path, meta: dict[str, Any],
                  seed: int, fractions: tuple[float, float, float] = FRACTIONS) -> dict[str, int]:
    """Write the split dataset dir; returns pair counts per split."""
    groups, split_of = listing_splits(listings, fractions, seed)
    by_id = {x.id: x for x in listings}
    splits: dict[str, dict[str, Any]] = {s: {"queries": {}, "corpus": {}, "relevant_docs": {}, "mode": "text"} for s in ("train", "val", "test")}
    styles: dict[str, str] = {}
    for lid, pairs in queries.items():
        split = splits[split_of[lid]]
        for i, (query, style) in enumerate(pairs):
            qid = f"q-{hashlib.sha1(f'{lid}:{i}:{query}'.encode()).hexdigest()[:12]}"
            split["queries"][qid] = query
            split["relevant_docs"][qid] = [lid]
            styles[qid] = style
        split["corpus"][lid] = by_id[lid].document_text()
    for name, data in splits.items():  # every split's corpus holds all of its listings, queried or not
        for lid, home in split_of.items():
            if home == name:
                data["corpus"].setdefault(lid, by_id[lid].document_text())
    out.mkdir(parents=True, exist_ok=True)
    counts = {name: len(data["queries"]) for name, data in splits.items()}
    for name, data in splits.items():
        (out / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False))
    (out / "styles.json").write_text(json.dumps(styles))
    (out / "groups.json").write_text(json.dumps(groups))
    (out / "meta.json").write_text(json.dumps({**meta, "seed": seed, "fractions": fractions, "pairs": counts,
                                               "listings": len(listings)}, indent=2))
    return counts


def source_hash(listings: Iterable[JobListing]) -> str:
    digest = hashlib.sha256()
    for x in listings:
        digest.update(f"{x.id}:{x.content_hash()}".encode())
    return digest.hexdigest()[:16]


def load_split(pairs_dir: Path, split: str) -> IRSplit:
    """One split of a `jobrag gen-pairs` directory (the only reader of its split files)."""
    path = Path(pairs_dir) / f"{split}.json"
    if not path.exists():
        raise ConfigError(f"no {split} split at {path}: create the dataset with `jobrag gen-pairs --out {pairs_dir}`")
    raw = json.loads(path.read_text(encoding="utf-8"))
    return IRSplit(queries=raw["queries"], corpus=raw["corpus"], relevant_docs=raw["relevant_docs"])


def load_training_data(pairs_dir: Path) -> TrainingData:
    """A `jobrag gen-pairs` directory as TrainingData (train/val/test IR splits + leakage groups)."""
    pairs_dir = Path(pairs_dir)
    meta = json.loads((pairs_dir / "meta.json").read_text()) if (pairs_dir / "meta.json").exists() else {}
    groups = json.loads((pairs_dir / "groups.json").read_text()) if (pairs_dir / "groups.json").exists() else {}
    splits = {name: load_split(pairs_dir, name) for name in ("train", "val", "test")}
    return TrainingData(kind="ir", name=str(pairs_dir), meta=meta, groups=groups, **splits)
