"""Hard negatives with sentence-transformers' `mine_hard_negatives`, minus the positive's own reposts; no pair is dropped.

The base model ranks the training corpus for every query; candidates scoring within a relative margin of the
positive are skipped (they are likely unlabeled positives or near-duplicates), and so is any listing with the same
title and company as the positive (a repost of the same job), which `mine_hard_negatives` cannot know about.

Every input pair comes out as exactly one (anchor, positive, negative) row, in input order. `mine_hard_negatives`
is asked for `triplet` output, which lists each surviving candidate separately (its `n-tuple` output silently drops
every pair with fewer than `num_negatives` candidates outside the margin: a third of the job pairs); we keep the
best candidate that is not a repost. A pair left with none (all near candidates inside the margin, or reposts) gets a
seeded random listing of another title+company as an easy negative: the loss sees one more in-batch-style negative
and the pair's (query, positive) signal is kept with the same column layout as the rest of the dataset.

With `exclude_same_role` a candidate of the positive's own occupation (its core title, seniority and codes removed)
is skipped as well: a job seeker calls another hospital's ICU nurse posting relevant too (dev_a grades it 1), so
pushing it away from the query teaches the wrong thing. The negatives left are neighbouring occupations.

`negatives` picks where candidates come from: `dense` (the above), `bm25` (bm25s with English stopwords and PyStemmer,
as the BM25 retriever: listings that share the query's words but, after the same exclusions, not its job; the lexical
near misses a dense model confuses on a narrow corpus) or `both` (one of each per pair, as `negative_1` (dense) and
`negative_2` (bm25): MultipleNegativesRankingLoss takes any number of negative columns). Judged negatives that come
with the data (label-0 rows of a pairs file) are tried first, under the same exclusions.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

logger = logging.getLogger(__name__)


def repost_key(document: str) -> str:
    """Title + company from a document's header line ('Title | Company | …')."""
    header = document.split("\n", 1)[0].lower()
    parts = [re.sub(r"\W+", " ", p).strip() for p in header.split(" | ")[:2]]
    return "|".join(parts)


@lru_cache(maxsize=65536)  # called per candidate, per fallback draw and again for the batch sampler's entities
def role_key(document: str) -> str:
    """The occupation in a document's header: 'Senior ICU Registered Nurse - Nights | …' -> 'icu registered nurse'."""
    from finetune.templates import core_role

    title = document.split("\n", 1)[0].split(" | ", 1)[0]
    return " ".join(re.sub(r"[^a-z ]+", " ", core_role(title).lower()).split())


NEGATIVE_SOURCES = ("dense", "bm25", "both")
BM25_DEPTH = 100  # BM25 candidates per query: cheap, and the same-role rule can skip many on a narrow corpus


def dense_ranked(dataset: Any, model: Any, corpus: list[str], relative_margin: float | None, candidates: int, range_max: int,
                 batch_size: int) -> list[list[str]]:
    """Per pair, the base model's candidates outside the margin, best first (positive excluded)."""
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(dataset, model, anchor_column_name="anchor", positive_column_name="positive", corpus=corpus,
                                relative_margin=relative_margin, num_negatives=candidates, range_max=range_max,
                                sampling_strategy="top", output_format="triplet", batch_size=batch_size, verbose=False)
    ranked: dict[tuple[str, str], list[str]] = {}  # triplet rows come per (anchor, positive), best candidate first
    for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"]):
        ranked.setdefault((a, p), []).append(n)
    return [ranked.get((a, p), []) for a, p in zip(dataset["anchor"], dataset["positive"])]


def bm25_ranked(anchors: list[str], corpus: list[str], depth: int = BM25_DEPTH) -> list[list[str]]:
    """Per query, the corpus listings BM25 scores above zero (they share at least one query word), best first."""
    import bm25s
    import Stemmer

    docs = sorted(set(corpus))
    stemmer = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(bm25s.tokenize(docs, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    ids, scores = index.retrieve(bm25s.tokenize(anchors, stopwords="en", stemmer=stemmer, show_progress=False),
                                 k=min(depth, len(docs)), show_progress=False)
    return [[docs[j] for j, s in zip(row, row_scores) if s > 0] for row, row_scores in zip(ids.tolist(), scores.tolist())]


def pick(anchors: list[str], positives: list[str], ranked: list[list[str]], pool: list[str], key: Callable[[str], str] = repost_key,
         seed: int = 42, exclude_same_role: bool = False, given: list[list[str]] | None = None, avoid: list[str] | None = None,
         salt: str = "") -> tuple[list[str], dict[str, int]]:
    """One negative per pair: the first judged (`given`) or ranked candidate that passes the exclusions, else a random one.

    Counts: `pairs`, `given_negative` (a judged negative), `with_negative` (a mined one), `fallback_negative` (random),
    `repost_skipped`, `same_role_skipped`, `duplicate_skipped` (the pair's other negative, `avoid`).
    """
    stats = {"pairs": len(anchors), "given_negative": 0, "with_negative": 0, "fallback_negative": 0, "repost_skipped": 0,
             "same_role_skipped": 0, "duplicate_skipped": 0}
    negatives: list[str] = []
    for i, (a, p) in enumerate(zip(anchors, positives)):
        own, role = key(p), role_key(p) if exclude_same_role else None
        other = avoid[i] if avoid else None
        judged = given[i] if given else []
        chosen = None
        for rank, n in enumerate([*judged, *ranked[i]]):
            if n == p or key(n) == own:
                stats["repost_skipped"] += 1
            elif role is not None and role_key(n) == role:
                stats["same_role_skipped"] += 1
            elif n == other:
                stats["duplicate_skipped"] += 1
            else:
                chosen = n
                stats["given_negative" if rank < len(judged) else "with_negative"] += 1
                break
        if chosen is None:
            rng = random.Random(f"{seed}:{salt}{i}:{a}")
            tries = [rng.choice(pool) for _ in range(20)] + pool  # a few random draws, then a deterministic scan
            chosen = next((n for n in tries if n != p and n != other and key(n) != own and (role is None or role_key(n) != role)), None)
            stats["fallback_negative"] += 1
        negatives.append(chosen if chosen is not None else p)  # only a corpus of reposts leaves nothing else to pick
    if not given:
        del stats["given_negative"]
    if not avoid:
        del stats["duplicate_skipped"]
    return negatives, stats


def mine(dataset: Any, model: Any, corpus: list[str], relative_margin: float | None = 0.05, candidates: int = 8, range_max: int = 30,
         batch_size: int = 32, key: Callable[[str], str] = repost_key, seed: int = 42, exclude_same_role: bool = False,
         source: str = "dense", given: list[list[str]] | None = None) -> tuple[Any, dict[str, int]]:
    """(anchor, positive) dataset -> one row per input pair in input order, with a `negative` column (`dense`, `bm25`)
    or `negative_1` (dense) and `negative_2` (bm25) columns (`both`).

    `given`: per pair, judged negative texts tried before the mined candidates. Returns the dataset and the counts of
    `pick` (`both`: prefixed `dense_` and `bm25_`).
    """
    from datasets import Dataset

    if source not in NEGATIVE_SOURCES:
        raise ValueError(f"unknown negatives source {source!r}; valid: {', '.join(NEGATIVE_SOURCES)}")
    anchors, positives = list(dataset["anchor"]), list(dataset["positive"])
    pool = sorted(set(corpus))
    common = dict(pool=pool, key=key, seed=seed, exclude_same_role=exclude_same_role)
    columns: dict[str, list[str]] = {"anchor": anchors, "positive": positives}
    stats: dict[str, int] = {"pairs": len(anchors)}
    if source in ("dense", "both"):
        ranked = dense_ranked(dataset, model, corpus, relative_margin, candidates, range_max, batch_size)
        dense, counts = pick(anchors, positives, ranked, given=given, **common)
        columns["negative" if source == "dense" else "negative_1"] = dense
        stats |= counts if source == "dense" else {f"dense_{k}": v for k, v in counts.items() if k != "pairs"}
    if source in ("bm25", "both"):
        ranked = bm25_ranked(anchors, corpus)
        if source == "bm25":
            columns["negative"], counts = pick(anchors, positives, ranked, given=given, **common)
            stats |= counts
        else:
            columns["negative_2"], counts = pick(anchors, positives, ranked, avoid=columns["negative_1"], salt="bm25:", **common)
            stats |= {f"bm25_{k}": v for k, v in counts.items() if k != "pairs"}
    logger.info("hard negatives (%s): %s", source, stats)
    return Dataset.from_dict(columns), stats
