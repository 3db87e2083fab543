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


def mine(dataset: Any, model: Any, corpus: list[str], relative_margin: float | None = 0.05, candidates: int = 8, range_max: int = 30,
         batch_size: int = 32, key: Callable[[str], str] = repost_key, seed: int = 42, exclude_same_role: bool = False) -> tuple[Any, dict[str, int]]:
    """(anchor, positive) dataset -> (anchor, positive, negative), one row per input pair in input order.

    Returns the dataset and counts: `pairs` (= rows), `with_negative` (a mined hard negative), `fallback_negative`
    (a random other listing), `repost_skipped` (candidates dropped as the positive's reposts), `same_role_skipped`.
    """
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    anchors, positives = list(dataset["anchor"]), list(dataset["positive"])
    mined = mine_hard_negatives(dataset, model, anchor_column_name="anchor", positive_column_name="positive", corpus=corpus,
                                relative_margin=relative_margin, num_negatives=candidates, range_max=range_max,
                                sampling_strategy="top", output_format="triplet", batch_size=batch_size, verbose=False)
    ranked: dict[tuple[str, str], list[str]] = {}  # triplet rows come per (anchor, positive), best candidate first
    for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"]):
        ranked.setdefault((a, p), []).append(n)
    pool = sorted(set(corpus))
    stats = {"pairs": len(anchors), "with_negative": 0, "fallback_negative": 0, "repost_skipped": 0, "same_role_skipped": 0}
    negatives: list[str] = []
    for i, (a, p) in enumerate(zip(anchors, positives)):
        own, role = key(p), role_key(p) if exclude_same_role else None
        chosen = None
        for n in ranked.get((a, p), []):
            if key(n) == own:
                stats["repost_skipped"] += 1
                continue
            if role is not None and role_key(n) == role:
                stats["same_role_skipped"] += 1
                continue
            chosen = n
            break
        if chosen is None:
            rng = random.Random(f"{seed}:{i}:{a}")
            tries = [rng.choice(pool) for _ in range(20)] + pool  # a few random draws, then a deterministic scan
            chosen = next((n for n in tries if n != p and key(n) != own and (role is None or role_key(n) != role)), None)
            stats["fallback_negative"] += 1
        else:
            stats["with_negative"] += 1
        negatives.append(chosen if chosen is not None else p)  # only a corpus of reposts leaves nothing else to pick
    logger.info("hard negatives: %s", stats)
    return Dataset.from_dict({"anchor": anchors, "positive": positives, "negative": negatives}), stats
