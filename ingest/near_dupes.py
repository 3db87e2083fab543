"""Near-duplicate postings: the same job reposted with a few words changed, folded into its first copy.

Text similarity is the Jaccard similarity of word 3-shingles of the description, estimated with datasketch MinHash and
looked up with MinHashLSH. Text alone is not enough: job boards carry many templated postings whose descriptions are
near-identical (about 190 pairs at Jaccard >= 0.9 on jobs_a) but which are different jobs to a seeker: one hotel
chain's housekeeper opening in two cities, one league's "Youth Soccer Referee" and "Youth Basketball Referee", a
bank's advisor role in two towns. So a posting only folds into an earlier one that also has the same title (compared
word by stemmed word, so "Software Developer" and "Software Development" agree but "Soccer" and "Basketball" do not),
the same company, the same location and the same work type (a part-time opening is not the full-time one). Pay may
differ: a repost often adjusts it. Every fold is reported (which id went into which).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rag_app.records import JobListing

SHINGLE_WORDS = 3
NUM_PERM = 128
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Fold:
    """Listing `id` (source row `row`) was folded into the earlier listing `kept` (row `kept_row`)."""

    id: str
    row: int
    kept: str
    kept_row: int
    jaccard: float


def shingles(text: str) -> set[bytes]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + SHINGLE_WORDS]).encode() for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}


class NearDuplicates:
    """Streaming detector: `check(listing, row)` returns a Fold when the listing repeats an earlier kept one, else None
    (and remembers it). Only listings whose title, company, location and work type repeat are MinHashed, so a corpus
    without such repeats costs one dict lookup per listing."""

    def __init__(self, threshold: float) -> None:
        import Stemmer

        self.threshold = threshold
        self._stem = Stemmer.Stemmer("english").stemWords
        self._template: Any = None  # MinHash and MinHashLSH, made when a key first repeats (datasketch imports scipy)
        self._lsh: Any = None
        self._first: dict[tuple, tuple[JobListing, int]] = {}  # key -> first listing with it, not yet MinHashed
        self._indexed: dict[str, tuple[tuple, Any, int]] = {}  # id -> (key, MinHash, row)

    def key(self, x: JobListing) -> tuple:
        def words(value: str | None) -> tuple[str, ...]:
            return tuple(_WORD.findall((value or "").lower()))

        return tuple(self._stem(list(words(x.title)))), words(x.company), words(x.location), words(x.work_type)

    def _start(self) -> None:
        from datasketch import MinHash, MinHashLSH

        self._template = MinHash(num_perm=NUM_PERM)  # permutations are drawn once and shared by copies
        # LSH only proposes candidates, so it runs 0.2 below the threshold: at the threshold itself its banding finds a
        # pair at Jaccard 0.9 one time in three, at 0.7 practically always; each candidate's MinHash estimate decides
        self._lsh = MinHashLSH(threshold=max(0.05, self.threshold - 0.2), num_perm=NUM_PERM)

    def _remember(self, listing: JobListing, key: tuple, row: int, minhash: Any) -> None:
        self._lsh.insert(listing.id, minhash)
        self._indexed[listing.id] = (key, minhash, row)

    def _minhash(self, listing: JobListing) -> Any:
        minhash = self._template.copy()
        minhash.update_batch(shingles(listing.description))
        return minhash

    def check(self, listing: JobListing, row: int) -> Fold | None:
        key = self.key(listing)
        if key not in self._first:
            self._first[key] = (listing, row)
            return None
        first, first_row = self._first[key]
        if self._lsh is None:
            self._start()
        if first.id not in self._indexed:  # the key repeats: now its first holder is worth a MinHash
            self._remember(first, key, first_row, self._minhash(first))
        minhash = self._minhash(listing)
        matches = [(other_row, other, j) for other in self._lsh.query(minhash)
                   for other_key, other_hash, other_row in [self._indexed[other]]
                   if other_key == key and (j := minhash.jaccard(other_hash)) >= self.threshold]
        if matches:
            kept_row, kept, j = min(matches)  # the earliest kept copy
            return Fold(listing.id, row, kept, kept_row, round(j, 3))
        self._remember(listing, key, row, minhash)
        return None
