"""Leakage-safe splits: listings are grouped so that no company, and no near-duplicate posting, spans two splits.

Two listings share a group when they have the same normalised company, the same title+company (reposts), or the same
opening of their description (templated postings that staffing firms spread across employers). Groups, never single
listings, are assigned to train/val/test.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

from rag_app.records import JobListing

FRACTIONS = (0.8, 0.1, 0.1)  # train, val, test shares of listings
_SUFFIXES = re.compile(r"\b(inc|llc|ltd|corp|corporation|co|company|plc|gmbh|lp|llp|group|the)\b\.?", re.I)


def company_key(company: str | None) -> str | None:
    if not company:
        return None
    key = " ".join(_SUFFIXES.sub(" ", re.sub(r"[^\w\s]", " ", company.lower())).split())
    return key or None


def description_key(description: str, chars: int = 300) -> str:
    norm = "".join(c for c in description.lower() if c.isalnum())
    return hashlib.sha1(norm[:chars].encode()).hexdigest()


def leakage_groups(listings: Sequence[JobListing]) -> dict[str, str]:
    """listing id -> group id (union-find over company, repost key and description opening)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    for x in listings:
        node = f"id:{x.id}"
        find(node)
        for key in (f"co:{company_key(x.company)}" if company_key(x.company) else None, f"rp:{x.repost_key()}",
                    f"de:{description_key(x.description)}"):
            if key:
                union(node, key)
    return {x.id: find(f"id:{x.id}") for x in listings}


def split_groups(groups: dict[str, str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """group id -> 'train'|'val'|'test', filling val and test to their share of listings first (seeded order)."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    total = len(groups)
    targets = {"val": fractions[1] * total, "test": fractions[2] * total}
    filled = {"val": 0, "test": 0}
    out = {}
    for g in order:
        for split in ("val", "test"):
            if filled[split] + sizes[g] <= targets[split] + 1 and sizes[g] <= max(1, 0.02 * total):
                out[g] = split
                filled[split] += sizes[g]
                break
        else:
            out[g] = "train"
    return out


def listing_splits(listings: Sequence[JobListing], fractions: tuple[float, float, float] = FRACTIONS, seed: int = 42) -> tuple[dict[str, str], dict[str, str]]:
    """(listing id -> leakage group, listing id -> 'train'|'val'|'test'): the split every pairs dataset of these listings uses."""
    groups = leakage_groups(listings)
    assignment = split_groups(groups, fractions, seed)
    return groups, {lid: assignment[g] for lid, g in groups.items()}
