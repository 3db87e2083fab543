"""What code writes in every answer, from listing metadata and listing text, never from a model.

- the lead line: what was understood from the question and how many listings meet all of it, said plainly when none do
  ("No listing meets every constraint (remote; pays ≥ $80,000 a year). Closest matches, with what each misses:");
- one line per listing of metadata facts: title, employer, place, pay, work type;
- the one or two sentences of each listing that best match the question, quoted verbatim (`EvidencePicker`: the
  embedder when there is one, else bm25s over the listing's sentences);
- for a closest match, the constraints it misses.
Every piece of listing text is made inert first (rag_app.safe_text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from rag_app.grounding import sentences
from rag_app.records import Constraint, SourceListing
from rag_app.safe_text import inert

if TYPE_CHECKING:
    from rag_app.embeddings import Embedder

# Sentences every job ad carries: never the evidence that a listing fits (also skipped when mining query terms).
BOILERPLATE = re.compile(r"other duties|as (assigned|needed|required)|equal opportunity|reasonable accommodation|background check|"
                         r"regard to race|without regard|e-?verify|drug[- ]free|at-will", re.I)


def lead_line(question: str, understood: Sequence[Constraint], applied: bool, met: int, shown: int) -> str:
    """The first line of an answer: the question, what was understood and whether the listings meet it."""
    asked = f"“{inert(question)}”"
    if not shown:
        return f"No listings matched {asked}."
    if not understood:
        return f"Best matches for {asked}:"
    wanted = "; ".join(c.label for c in understood)
    if not applied:
        return f"Best matches for {asked}, searched without the understood constraints ({wanted}):"
    if met == 0:
        return f"No listing meets every constraint ({wanted}). Closest matches for {asked}, with what each misses:"
    if met < shown:
        return f"{met} listing{'s' if met != 1 else ''} meet{'s' if met == 1 else ''} every constraint ({wanted}); then the closest other matches:"
    return f"Best matches for {asked} that meet every constraint ({wanted}):"


def listing_line(rank: int, source: SourceListing, evidence: Sequence[str]) -> str:
    """`1. [id] Title — Employer · Place · Pay · Work type`, the quoted evidence, and what a closest match misses."""
    facts = " · ".join(inert(v) for v in (source.company, source.location, source.salary, source.work_type) if v)
    line = f"{rank}. [{source.id}] {inert(source.title)}" + (f" — {facts}" if facts else "")
    quoted = " ".join(f"“{inert(s)}”" for s in evidence)
    if quoted:
        line += f"\n   {quoted}"
    if source.unmet:
        line += f"\n   misses: {'; '.join(source.unmet)}"
    return line


class EvidencePicker:
    """The sentences of each listing that best match a question (the model never paraphrases them: they are quoted)."""

    def __init__(self, embedder: Embedder | None = None, per_listing: int = 2, max_sentences: int = 30, max_chars: int = 300) -> None:
        self.embedder, self.per_listing, self.max_sentences, self.max_chars = embedder, per_listing, max_sentences, max_chars

    def __call__(self, question: str, sources: Sequence[SourceListing]) -> dict[str, list[str]]:
        candidates = {s.id: self._sentences(s.chunk) for s in sources}
        if not any(candidates.values()):
            return {s.id: [] for s in sources}
        scores = self._scores(question, [x for xs in candidates.values() for x in xs])
        out, at = {}, 0
        for lid, xs in candidates.items():
            mine = scores[at: at + len(xs)]
            at += len(xs)
            best = sorted(np.argsort(-mine)[: self.per_listing]) if xs else []
            out[lid] = [xs[i] for i in best]  # in the listing's own order
        return out

    def _sentences(self, text: str) -> list[str]:
        found = dict.fromkeys(" ".join(s.split()) for s in sentences(text))  # a posting that repeats itself is quoted once
        return [s for s in found if 25 <= len(s) <= self.max_chars and not BOILERPLATE.search(s)][: self.max_sentences]

    def _scores(self, question: str, texts: list[str]) -> np.ndarray:
        if self.embedder is not None:
            q = np.asarray(self.embedder.get_query_embedding(question), dtype=np.float32)
            m = np.asarray(self.embedder.get_text_embedding_batch(texts), dtype=np.float32)
            return m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q) + 1e-12)
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        index = bm25s.BM25()
        index.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
        return np.asarray(index.get_scores(bm25s.tokenize(question, stopwords="en", stemmer=stemmer, show_progress=False,
                                                           return_ids=False)[0]), dtype=np.float32)
