"""Reranking: a sentence-transformers `CrossEncoder` re-scores the first stage's top listings.

`RerankRetriever` wraps any listing retriever (dense, bm25, hybrid; spec suffix `+rerank[:CE_MODEL]`): it takes the
inner retriever's top `depth` listings, scores (question, header + first chunk) pairs with the cross-encoder, orders
them by that score and returns the best `top_k` (listings below `depth`, when top_k is larger, keep their first-stage
order after them). Online the default is a hub reranker (`retrieval.rerank_model`, cross-encoder/ms-marco-MiniLM-L6-v2);
offline, one trained on the generated pairs by `jobrag train-reranker` (finetune.rerank). The cross-encoder reads the
same passage it was trained on: the listing header line, a blank line, then text (here the first stored chunk).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle

from rag_app.errors import ConfigError
from rag_app.filters import ListingFilters
from rag_app.records import CHUNK_INDEX, HEADER, LISTING_ID, listing_id_of

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection

    from rag_app.constrained import Filterable

logger = logging.getLogger(__name__)
PASSAGE_CHARS = 2000  # past any cross-encoder's window (512 word pieces); spares the tokenizer whole listings


def passage(header: str, text: str) -> str:
    """What the cross-encoder reads for a listing (in training and at query time): header, blank line, text."""
    return f"{header}\n\n{text}"[:PASSAGE_CHARS] if header else text[:PASSAGE_CHARS]


def first_chunks(collection: Collection) -> Callable[[list[str]], dict[str, str]]:
    """listing ids -> their passage (header + first stored chunk), read from the collection in one call."""

    def get(ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        got = collection.get(where={"$and": [{LISTING_ID: {"$in": ids}}, {CHUNK_INDEX: 0}]}, include=["documents", "metadatas"])
        return {str(m[LISTING_ID]): passage(str(m.get(HEADER, "")), doc or "") for m, doc in zip(got["metadatas"] or [], got["documents"] or [])}

    return get


class CrossEncoderScorer:
    """A loaded cross-encoder: (question, passages) -> one relevance score per passage (higher is better)."""

    def __init__(self, model: Any, name: str, batch_size: int = 32) -> None:
        self.model, self.name, self.batch_size = model, name, batch_size

    @classmethod
    def load(cls, name: str, device: str | None = None, batch_size: int = 32) -> CrossEncoderScorer:
        """Hub name or local dir; a sentence-embedding dir is refused (its head would be random)."""
        from sentence_transformers import CrossEncoder

        from rag_app.model_paths import resolve_model

        path = resolve_model(name)
        config = Path(path) / "config_sentence_transformers.json"
        if (Path(path) / "modules.json").is_file() and (not config.is_file() or json.loads(config.read_text()).get("model_type") != "CrossEncoder"):
            raise ConfigError(f"{name} is a sentence-embedding model, not a cross-encoder: train one with "
                              f"`jobrag train-reranker --out DIR` and use +rerank:DIR")
        try:
            model = CrossEncoder(path, device=device)
        except Exception as exc:  # offline hub name, missing dir, broken checkpoint
            raise ConfigError(f"cannot load cross-encoder {name!r} ({exc.__class__.__name__}); offline, train one with "
                              f"`jobrag train-reranker --out DIR` and use +rerank:DIR (or set retrieval.rerank_model)") from None
        return cls(model, name, batch_size)

    def __call__(self, question: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        scores = self.model.predict([(question, p) for p in passages], batch_size=self.batch_size, show_progress_bar=False)
        return [float(s) for s in scores]


class RerankRetriever(BaseRetriever):
    """The inner retriever's top `depth` listings re-ordered by a cross-encoder; their score becomes its score."""

    def __init__(self, inner: Filterable, scorer: Callable[[str, list[str]], list[float]],
                 passages: Callable[[list[str]], dict[str, str]], top_k: int, depth: int) -> None:
        super().__init__()
        self.inner, self.scorer, self.passages, self.top_k, self.depth = inner, scorer, passages, top_k, depth

    @property
    def filters(self) -> ListingFilters:
        return self.inner.filters

    def with_filters(self, filters: ListingFilters) -> RerankRetriever:
        return RerankRetriever(self.inner.with_filters(filters), self.scorer, self.passages, self.top_k, self.depth)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self.inner.retrieve(query_bundle)
        head, tail = hits[: self.depth], hits[self.depth:]
        found = self.passages([listing_id_of(h) for h in head])
        texts = [found.get(listing_id_of(h)) or h.node.get_content() for h in head]  # a listing without a stored chunk 0: its hit's text
        scores = self.scorer(query_bundle.query_str, texts)
        order = sorted(range(len(head)), key=lambda i: scores[i], reverse=True)  # stable: ties keep the first-stage order
        return [NodeWithScore(node=head[i].node, score=scores[i]) for i in order][: self.top_k] + tail[: max(0, self.top_k - len(head))]
