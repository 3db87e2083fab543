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
from typing import TYPE_CHECKING, Protocol

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag_app.filters import ListingFilters
from rag_app.query import Understanding, understand
from rag_app.records import LISTING_ID, listing_id_of

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag_app.embeddings import Embedder


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
    """Understood constraints as filters, with the closest other matches (and what they miss) when too few meet them.

    A listing that meets the constraints but is a much weaker match than the best one overall (a remote data engineer for
    "remote sushi chef") is not a match: with a `relevance` scorer, listings that meet the constraints come first only when
    their relevance is within `margin` of the best listing's; weaker ones go after the closest matches.
    """

    def __init__(self, inner: Filterable, top_k: int, relevance: DenseRelevance | None = None, margin: float = 0.1,
                 reference_rank: int = 10) -> None:
        super().__init__()
        self.inner, self.top_k, self.relevance, self.margin, self.reference_rank = inner, top_k, relevance, margin, reference_rank

    def search(self, question: str, ignore: Iterable[str] = (), apply: bool = True) -> Search:
        """Retrieve for `question`; `ignore` drops understood constraints by key (a chip the user removed), `apply=False`
        searches without any of them (they are still reported)."""
        understanding = understand(question)
        ignore = set(ignore)
        wanted = understanding.filters(ignore)
        # one query embedding for both runs and the relevance scores (llama-index retrievers use a bundle's embedding)
        bundle = QueryBundle(question, embedding=self.relevance.embed(question)) if self.relevance is not None else QueryBundle(question)
        closest = self.inner.retrieve(bundle)  # under the user's own filters only
        unmet = {lid: miss for h in closest if (miss := understanding.unmet(dict(h.node.metadata), ignore)) for lid in [listing_id_of(h)]}
        if not apply or wanted.is_empty():  # nothing understood, or searching without it: relevance order, misses still named
            hits = closest[: self.top_k]
            return Search(understanding, hits, applied=False, met=sum(listing_id_of(h) not in unmet for h in hits), unmet=unmet)
        matching = self.inner.with_filters(_combine(self.inner.filters, wanted)).retrieve(bundle)
        matching += [h for h in closest if listing_id_of(h) not in unmet]  # meets them all though the filtered run missed it
        strong, weak = self._split(bundle, _unique(matching), closest)
        hits = strong[: self.top_k]
        met = len(hits)
        seen = {listing_id_of(h) for h in hits}
        for hit in [*closest, *weak]:  # then the closest matches with what each misses, then weaker listings that meet them
            if len(hits) == self.top_k:
                break
            if listing_id_of(hit) not in seen:
                seen.add(listing_id_of(hit))
                hits.append(hit)
        return Search(understanding, hits, applied=True, met=met, unmet={k: v for k, v in unmet.items() if k in seen})

    def _split(self, bundle: QueryBundle, matching: list[NodeWithScore], closest: list[NodeWithScore]) -> tuple[list, list]:
        if self.relevance is None or not matching or not closest:
            return matching, []
        reference = closest[min(self.reference_rank, len(closest)) - 1]  # the listing the user would otherwise see at that rank
        scores = self.relevance(bundle.embedding, [*matching, reference])
        bar = scores.get(listing_id_of(reference), 0.0) - self.margin
        return [h for h in matching if scores.get(listing_id_of(h), 0.0) >= bar], [h for h in matching if scores.get(listing_id_of(h), 0.0) < bar]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self.search(query_bundle.query_str).hits


class DenseRelevance:
    """How well each listing matches a question on one scale for every retriever: the cosine of the question's embedding
    and the listing's best stored chunk vector (from the collection, nothing re-embedded)."""

    def __init__(self, collection: Collection, embedder: Embedder) -> None:
        self.collection, self.embedder = collection, embedder

    def embed(self, question: str) -> list[float]:
        return self.embedder.get_query_embedding(question)

    def __call__(self, query_vector: list[float], hits: list[NodeWithScore]) -> dict[str, float]:
        import numpy as np

        ids = list(dict.fromkeys(listing_id_of(h) for h in hits))
        got = self.collection.get(where={LISTING_ID: {"$in": ids}}, include=["embeddings", "metadatas"])
        q = np.asarray(query_vector, dtype=np.float32)
        q /= np.linalg.norm(q) or 1.0
        scores: dict[str, float] = {}
        for vector, meta in zip(got["embeddings"], got["metadatas"]):
            v = np.asarray(vector, dtype=np.float32)
            lid = str(meta[LISTING_ID])
            scores[lid] = max(scores.get(lid, -1.0), float(v @ q / (np.linalg.norm(v) or 1.0)))
        return scores


def _unique(hits: list[NodeWithScore]) -> list[NodeWithScore]:
    seen: set[str] = set()
    return [h for h in hits if not (listing_id_of(h) in seen or seen.add(listing_id_of(h)))]


def _combine(explicit: ListingFilters, understood: ListingFilters) -> ListingFilters:
    """Explicit filters (flags, settings, the UI sidebar) win field by field over what was understood."""
    chosen = {k: v for k, v in explicit.model_dump(exclude_defaults=True).items() if k != "lenient"}
    return understood.model_copy(update=chosen)
