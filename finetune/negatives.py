"""Hard negatives with sentence-transformers' `mine_hard_negatives`, minus the positive's own reposts.

The base model ranks the training corpus for every query; candidates scoring within a relative margin of the
positive are skipped (they are likely unlabeled positives or near-duplicates), and so is any listing with the same
title and company as the positive (a repost of the same job), which `mine_hard_negatives` cannot know about.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


def repost_key(document: str) -> str:
    """Title + company from a document's header line ('Title | Company | …')."""
    header = document.split("\n", 1)[0].lower()
    parts = [re.sub(r"\W+", " ", p).strip() for p in header.split(" | ")[:2]]
    return "|".join(parts)


def mine(dataset: Any, model: Any, corpus: list[str], relative_margin: float | None = 0.05, candidates: int = 4, range_max: int = 30,
         batch_size: int = 32, key: Callable[[str], str] = repost_key) -> tuple[Any, dict[str, int]]:
    """(anchor, positive) dataset -> (anchor, positive, negative); returns the dataset and counts of what was dropped."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    mined = mine_hard_negatives(dataset, model, anchor_column_name="anchor", positive_column_name="positive", corpus=corpus,
                                relative_margin=relative_margin, num_negatives=candidates, range_max=range_max,
                                sampling_strategy="top", output_format="n-tuple", batch_size=batch_size, verbose=False)
    negative_columns = [c for c in mined.column_names if c.startswith("negative")]
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    stats = {"pairs": len(dataset), "with_negative": 0, "repost_skipped": 0}
    for row in mined:
        own = key(row["positive"])
        for col in negative_columns:
            if key(row[col]) == own:
                stats["repost_skipped"] += 1
                continue
            rows["anchor"].append(row["anchor"])
            rows["positive"].append(row["positive"])
            rows["negative"].append(row[col])
            stats["with_negative"] += 1
            break
    stats["without_negative"] = stats["pairs"] - stats["with_negative"]
    logger.info("hard negatives: %s", stats)
    return Dataset.from_dict(rows), stats
