"""Retrieval that honours what the question asked for.

`ConstrainedRetriever` wraps a filterable retriever (dense, BM25 or hybrid). For every question it understands the
stated constraints (rag_app.query), retrieves with them applied as filters — pushed down to Chroma and bm25s exactly as
`--filter` flags are — and, when fewer than `top_k` listings meet them all, fills the list with the closest other
matches, each carrying the constraints it misses. A constraint is never dropped silently: the `Search` says what was
understood, whether it was applied, how many listings met every constraint and what each other listing misses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag_app.filters import ListingFilters
from rag_app.query import Understanding, understand
from rag_app.records import listing_id_of


class Filterable(Protocol):
    """A retriever that can run under other filters without loading anything again."""

    filters: ListingFilters

    def with_filters(self, filters: ListingFilters) -> BaseRetriever: ...

    def retrieve(self, str_or_query_bundle: str | QueryBundle) -> list[NodeWithScore]: ...


@dataclass
class Search:
    """One constrained retrieval: the listings, what was understood, and how the listings relate to it."""

    understanding: Understanding
    hits: list[NodeWithScore]
    applied: bool  # the understood constraints were applied as filters (False: none understood, or searched without them)
    met: int  # hits that meet every understood constraint (when applied, they come first)
    unmet: dict[str, list[str]] = field(default_factory=dict)  # listing id -> labels of the constraints it misses


class ConstrainedRetriever(BaseRetriever):
    """Understood constraints as filters, with the closest other matches (and what they miss) when too few meet them."""

    def __init__(self, inner: Filterable, top_k: int) -> None:
        super().__init__()
        self.inner, self.top_k = inner, top_k

    def search(self, question: str, ignore: Iterable[str] = (), apply: bool = True) -> Search:
        """Retrieve for `question`; `ignore` drops understood constraints by key (a chip the user removed), `apply=False`
        searches without any of them (they are still reported)."""
        understanding = understand(question)
        ignore = set(ignore)
        wanted = understanding.filters(ignore)
        if not apply or wanted.is_empty():  # nothing understood, or searching without it: relevance order, misses still named
            hits = self.inner.retrieve(question)[: self.top_k]
            unmet = {lid: miss for h in hits if (miss := understanding.unmet(dict(h.node.metadata), ignore)) for lid in [listing_id_of(h)]}
            return Search(understanding, hits, applied=False, met=len(hits) - len(unmet), unmet=unmet)
        combined = _combine(self.inner.filters, wanted)
        hits = self.inner.with_filters(combined).retrieve(question)[: self.top_k]
        met = len(hits)
        unmet: dict[str, list[str]] = {}
        if met < self.top_k:
            seen = {listing_id_of(h) for h in hits}
            for hit in self.inner.retrieve(question):  # the closest matches under the user's own filters only
                lid = listing_id_of(hit)
                if lid in seen:
                    continue
                seen.add(lid)
                unmet[lid] = understanding.unmet(dict(hit.node.metadata), ignore)
                hits.append(hit)
                if len(hits) == self.top_k:
                    break
        return Search(understanding, hits, applied=True, met=met, unmet=unmet)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(query_bundle.query_str).hits


def _combine(explicit: ListingFilters, understood: ListingFilters) -> ListingFilters:
    """Explicit filters (flags, settings, the UI sidebar) win field by field over what was understood."""
    chosen = {k: v for k, v in explicit.model_dump(exclude_defaults=True).items() if k != "lenient"}
    return understood.model_copy(update=chosen)
