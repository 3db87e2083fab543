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
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from finetune.split import leakage_groups, split_groups
from finetune.templates import STYLE_WEIGHTS, STYLES, core_role, facts_of, render
from rag_app.errors import ConfigError
from rag_app.records import IRSplit, JobListing, TrainingData
from rag_app.settings import DEFAULT_LLM_PROMPT

logger = logging.getLogger(__name__)

# Words every job ad uses: useless as search terms.
GENERIC_AD_WORDS = frozenset("""ability able apply applicant applicants applications candidate candidates career company duties
employee employees employer employment environment equal excellent experience experienced field functions including job jobs
knowledge looking opportunity opportunities plus position positions preferred qualifications required requirements responsibilities
role roles skills strong successful team teams work working years year join help new related provide ensure within across based
various well including also must make great best world class high highly help haves nice offer offers benefits pay salary
january february march april may june july august september october november december monday tuesday wednesday thursday
friday saturday sunday yrs year's hour hours week weeks day days month months annual annually per central north south east
west northern southern eastern western nationally national local locally daily weekly today immediately currently""".split())
# Terms come from the part of a posting its reader sees: the header plus about the first 1,000 characters of the
# description (the serving model's 256 word pieces; a person skims a similar amount). A term from further down is
# invisible to the model, so a query built on it teaches noise.
TERM_WINDOW_CHARS = 1000


def document_frequency_window(n_docs: int) -> tuple[int, int | float]:
    """TF-IDF (min_df, max_df) for a corpus of `n_docs`: a distinctive term is in at least 3 listings and at most 5% of them.

    Below 60 listings 5% is under 3 listings, so the floor drops (1 listing per 20, at least 1) and the ceiling becomes a
    count no lower than the floor: scikit-learn refuses a window whose ceiling is below its floor.
    """
    min_df = min(3, max(1, n_docs // 20))
    return (min_df, 0.05) if 0.05 * n_docs >= min_df else (min_df, max(min_df, math.ceil(0.05 * n_docs)))


class TemplateGenerator:
    """Offline queries from templates over mined facts (TF-IDF terms, duty lines, place, pay, workplace, seniority)."""

    name = "template"

    def __init__(self, listings: Sequence[JobListing], queries_per_listing: int = 3, seed: int = 42, n_terms: int = 8) -> None:
        self.k, self.seed = queries_per_listing, seed
        self.terms = self._distinctive_terms(listings, n_terms)

    @staticmethod
    def _distinctive_terms(listings: Sequence[JobListing], n: int) -> dict[str, list[str]]:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

        stop = sorted(ENGLISH_STOP_WORDS | GENERIC_AD_WORDS)
        min_df, max_df = document_frequency_window(len(listings))
        vec = TfidfVectorizer(stop_words=stop, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z+#]{2,}\b", min_df=min_df, max_df=max_df,
                              sublinear_tf=True, max_features=200_000)
        try:
            matrix = vec.fit_transform([x.description[:TERM_WINDOW_CHARS] for x in listings])
        except ValueError as exc:  # a tiny or stop-word-only corpus leaves no term in the window: queries go without terms
            logger.info("no distinctive terms in %d listings (%s); template queries use role, place and duties only", len(listings), exc)
            return {x.id: [] for x in listings}
        vocab = vec.get_feature_names_out()
        # Domain words: a term must also occur in the titles of at least two listings of the corpus (railroad, radiology,
        # petroleum, embedded …). This drops the adverbs and ad-copy verbs TF-IDF also ranks high (simply, comprise,
        # believes) that no job seeker types, without any hand-made list of skills.
        title_counts: dict[str, int] = {}
        for x in listings:
            for w in set(re.findall(r"[a-z][a-z+#]{2,}", x.title.lower())):
                title_counts[w] = title_counts.get(w, 0) + 1
        domain = {w for w, c in title_counts.items() if c >= 2}
        out = {}
        for row, listing in enumerate(listings):
            banned = set(re.findall(r"[a-z]+", f"{listing.company or ''} {listing.location or ''} {listing.title}".lower()))
            scores = matrix.getrow(row)
            ranked = [vocab[i] for i in scores.indices[scores.data.argsort()[::-1]]]
            out[listing.id] = [t for t in ranked if t in domain and not set(t.split()) & banned][:n]
        return out

    def __call__(self, listing: JobListing) -> list[tuple[str, str]]:
        rng = random.Random(f"{self.seed}:{listing.id}")
        facts = facts_of(listing, self.terms.get(listing.id, []))
        styles = list(dict.fromkeys(rng.choices(STYLES, weights=STYLE_WEIGHTS, k=self.k * 3)))
        title = listing.title.strip().lower()
        out: list[tuple[str, str]] = []
        for style in styles + [s for s in STYLES if s not in styles]:
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
                  seed: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, int]:
    """Write the split dataset dir; returns pair counts per split."""
    groups = leakage_groups(listings)
    assignment = split_groups(groups, fractions, seed)
    by_id = {x.id: x for x in listings}
    splits: dict[str, dict[str, Any]] = {s: {"queries": {}, "corpus": {}, "relevant_docs": {}, "mode": "text"} for s in ("train", "val", "test")}
    styles: dict[str, str] = {}
    for lid, pairs in queries.items():
        split = splits[assignment[groups[lid]]]
        for i, (query, style) in enumerate(pairs):
            qid = f"q-{hashlib.sha1(f'{lid}:{i}:{query}'.encode()).hexdigest()[:12]}"
            split["queries"][qid] = query
            split["relevant_docs"][qid] = [lid]
            styles[qid] = style
        split["corpus"][lid] = by_id[lid].document_text()
    for name, data in splits.items():  # every split's corpus holds all of its listings, queried or not
        for lid, group in groups.items():
            if assignment[group] == name:
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
