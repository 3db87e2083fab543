"""Retrievers over listings, as llama-index `BaseRetriever`s: dense (Chroma), bm25 (bm25s), hybrid (RRF or convex fusion).

All three return one `NodeWithScore` per listing: the listing's best-scoring chunk, carrying the listing metadata.
Spec strings build any of them on demand (`dense:MODEL`, `bm25`, `bm25:MODEL`, `hybrid:MODEL`), so two can run side
by side; `retrieval.mode` picks the default. `+rerank[:CE_MODEL]` re-scores the top listings with a cross-encoder
(rag_app.rerank), `+understand` applies the constraints understood from each question (rag_app.constrained).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag_app.errors import ConfigError
from rag_app.filters import ListingFilters
from rag_app.fusion import Fusion, fusion_for
from rag_app.records import BOOKKEEPING_KEYS, CHUNK_INDEX, HEADER, LISTING_ID, listing_id_of
from rag_app.settings import RETRIEVER_MODES
from rag_app.store import pages

if TYPE_CHECKING:
    from chromadb.api.models.Collection import Collection
    from llama_index.core import VectorStoreIndex
    from llama_index.retrievers.bm25 import BM25Retriever

    from rag_app.embeddings import Embedder
    from rag_app.settings import RetrievalSettings, Settings
    from rag_app.store import Store

logger = logging.getLogger(__name__)


def collapse(hits: list[NodeWithScore], top_k: int, filters: ListingFilters | None = None) -> list[NodeWithScore]:
    """Best chunk per listing, in score order, keeping only listings that pass `filters`."""
    best: dict[str, NodeWithScore] = {}
    for hit in sorted(hits, key=lambda h: h.score or 0.0, reverse=True):
        lid = listing_id_of(hit)
        if lid not in best and (filters is None or filters.matches(hit.node.metadata)):
            best[lid] = hit
    return list(best.values())[:top_k]


class DenseRetriever(BaseRetriever):
    """Nearest chunks in the embedder's Chroma collection (through llama-index's ChromaVectorStore), collapsed to listings."""

    def __init__(self, index: VectorStoreIndex, settings: RetrievalSettings, filters: ListingFilters | None = None) -> None:
        super().__init__()
        self.index, self.settings, self.filters = index, settings, filters or ListingFilters()

    @classmethod
    def over(cls, collection: Collection, embedder: Embedder, settings: RetrievalSettings, filters: ListingFilters | None = None) -> DenseRetriever:
        from llama_index.core import VectorStoreIndex
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return cls(VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=collection), embed_model=embedder), settings, filters)

    def with_filters(self, filters: ListingFilters) -> DenseRetriever:
        """The same index under other filters (cheap: nothing is loaded again)."""
        return DenseRetriever(self.index, self.settings, filters)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        # filters checked in Python (place, lenient levels) need a wider candidate pool
        widen = 1 if self.filters.is_empty() else 10 if self.filters.location else 4
        retriever = self.index.as_retriever(similarity_top_k=self.settings.candidate_k * widen,
                                            vector_store_kwargs={"where": self.filters.chroma_where()} if self.filters.chroma_where() else {})
        return collapse(retriever.retrieve(query_bundle), self.settings.top_k, self.filters)


def bm25_dir(home: Path, collection_name: str) -> Path:
    return home / "bm25" / collection_name


# The lexical index is a local copy of the collection's text, one per machine. Every ingest that changes a collection
# records a new version in the collection's own metadata (so in the shared Chroma server too); a machine whose copy was
# built from another version rebuilds it from the collection before its next BM25 search (RetrieverFactory).
VERSION_KEY = "bm25_version"


def content_version(collection: Collection) -> str | None:
    """The version the last ingest recorded on `collection` (None for collections ingested before versions existed)."""
    return (collection.metadata or {}).get(VERSION_KEY)


def stamp_version(collection: Collection) -> str:
    """Record a new content version on `collection` (after writing to it): every machine's BM25 copy is now stale."""
    version = f"{time.time_ns():x}-{uuid.uuid4().hex[:8]}"
    kept = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}  # the space is fixed at creation
    collection.modify(metadata={**kept, VERSION_KEY: version})
    return version


def bm25_version(path: Path) -> str | None:
    """The version of the local BM25 copy at `path` (None when there is none)."""
    try:
        info = json.loads((path / "jobrag.json").read_text())
    except (OSError, ValueError):
        return None
    return str(info.get("version") or info.get("listings"))  # copies built before versions: any non-None value


def build_bm25(collection: Collection, path: Path, version: str | None = None) -> int:
    """(Re)build the persisted BM25 index of every listing in `collection`: header + the listing's chunks in order.

    Each build goes to its own `v-<version>` directory, renamed into place, and `jobrag.json` then points at it
    (replaced atomically): processes sharing `path` never read a half-written index."""
    from llama_index.retrievers.bm25 import BM25Retriever

    texts: dict[str, dict[int, str]] = {}
    metas: dict[str, dict] = {}
    for page in pages(collection, ["metadatas", "documents"]):
        for meta, doc in zip(page["metadatas"] or [], page["documents"] or []):
            lid = str(meta[LISTING_ID])
            texts.setdefault(lid, {})[int(meta.get(CHUNK_INDEX, 0))] = doc or ""
            metas[lid] = {k: v for k, v in meta.items() if not k.startswith("_") and k not in (*BOOKKEEPING_KEYS, "doc_id", "document_id", "ref_doc_id")}
    if not texts:
        return 0
    nodes = [TextNode(id_=lid, text="\n".join(parts[i] for i in sorted(parts)), metadata=metas[lid],
                      excluded_embed_metadata_keys=[k for k in metas[lid] if k != HEADER], metadata_template="{value}")
             for lid, parts in texts.items()]
    version = version or content_version(collection) or f"local-{time.time_ns():x}"
    path.mkdir(parents=True, exist_ok=True)
    target, tmp = path / f"v-{re.sub(r'[^A-Za-z0-9._-]', '_', version)}", path / f".tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=10, language="english").persist(str(tmp))
    try:
        tmp.rename(target)
    except OSError:  # another process built this version first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    previous = json.loads((path / "jobrag.json").read_text()).get("dir") if (path / "jobrag.json").exists() else None
    info = {"collection": collection.name, "listings": len(nodes), "version": version, "dir": target.name}
    (path / f"jobrag.json.{os.getpid()}.tmp").write_text(json.dumps(info))
    os.replace(path / f"jobrag.json.{os.getpid()}.tmp", path / "jobrag.json")
    for old in path.glob("v-*"):  # older copies, keeping the previous one for a reader still loading it
        if old.name not in (target.name, previous):
            shutil.rmtree(old, ignore_errors=True)
    return len(nodes)


class BM25ListingRetriever(BaseRetriever):
    """BM25 (bm25s, English stemming and stopwords) over whole listings; filters become bm25s' corpus weight mask."""

    def __init__(self, bm25: BM25Retriever, metadata: list[dict], settings: RetrievalSettings, filters: ListingFilters | None = None) -> None:
        super().__init__()
        self.settings, self.filters, self.metadata = settings, filters or ListingFilters(), metadata
        self.bm25 = copy.copy(bm25)  # shares the index; the weight mask and depth are this retriever's own
        self.bm25.similarity_top_k = min(settings.candidate_k, len(metadata))
        self.bm25.corpus_weight_mask = None if self.filters.is_empty() else [int(self.filters.matches(m)) for m in metadata]

    @classmethod
    def load(cls, path: Path, settings: RetrievalSettings, filters: ListingFilters | None = None) -> BM25ListingRetriever:
        from llama_index.core.vector_stores.utils import metadata_dict_to_node
        from llama_index.retrievers.bm25 import BM25Retriever

        if not (path / "jobrag.json").exists():
            raise ConfigError(f"no BM25 index at {path}: run `jobrag ingest` (it builds one beside each collection)")
        built = path / json.loads((path / "jobrag.json").read_text()).get("dir", "")  # copies built before versions: path itself
        bm25 = BM25Retriever.from_persist_dir(str(built), show_progress=False)
        return cls(bm25, [metadata_dict_to_node(doc).metadata for doc in bm25.corpus], settings, filters)

    def with_filters(self, filters: ListingFilters) -> BM25ListingRetriever:
        """The same index under other filters (only the weight mask is computed again)."""
        return BM25ListingRetriever(self.bm25, self.metadata, self.settings, filters)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = [h for h in self.bm25.retrieve(query_bundle) if (h.score or 0) > 0]
        return collapse(hits, self.settings.top_k, self.filters)


class HybridRetriever(BaseRetriever):
    """Fusion of a dense and a BM25 listing ranking (rag_app.fusion): weighted reciprocal-rank fusion, or a convex
    combination of min-max normalised scores; `fusion` defaults to the settings' (RRF unless retrieval.fusion says)."""

    def __init__(self, dense: DenseRetriever, bm25: BM25ListingRetriever, settings: RetrievalSettings, fusion: Fusion | None = None) -> None:
        super().__init__()
        self.dense, self.bm25, self.settings = dense, bm25, settings
        self.fusion = fusion or Fusion.from_settings(settings)

    @property
    def filters(self) -> ListingFilters:
        return self.dense.filters

    def with_filters(self, filters: ListingFilters) -> HybridRetriever:
        return HybridRetriever(self.dense.with_filters(filters), self.bm25.with_filters(filters), self.settings, self.fusion)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        chunk: dict[str, NodeWithScore] = {}
        rankings = []
        for hits in (self.dense.retrieve(query_bundle), self.bm25.retrieve(query_bundle)):
            rankings.append([(listing_id_of(hit), float(hit.score or 0.0)) for hit in hits])
            for hit in hits:
                chunk.setdefault(listing_id_of(hit), hit)  # dense first: its chunk is the passage that matched
        return [NodeWithScore(node=chunk[lid].node, score=score) for lid, score in self.fusion.rank(*rankings, self.settings.top_k)]


UNDERSTAND = "+understand"  # spec suffix: apply the constraints understood from each question (rag_app.constrained)
RERANK = "+rerank"  # spec suffix, optionally `:CE_MODEL`: re-score the top listings with a cross-encoder (rag_app.rerank)


@dataclass(frozen=True)
class Spec:
    """A parsed retriever spec: `KIND[:MODEL][+rerank[:CE_MODEL]][+understand]`."""

    kind: str
    model: str | None = None
    rerank: bool = False
    rerank_model: str | None = None  # None with rerank: retrieval.rerank_model
    understand: bool = False

    @classmethod
    def parse(cls, spec: str) -> Spec:
        """Raises ConfigError listing the valid forms."""
        rest, understand = spec.removesuffix(UNDERSTAND), spec.endswith(UNDERSTAND)
        at = rest.rfind(RERANK)
        rerank = at >= 0 and rest[at + len(RERANK):][:1] in ("", ":")
        rerank_model = (rest[at + len(RERANK) + 1:] or None) if rerank else None
        rest = rest[:at] if rerank else rest
        kind, _, model = rest.partition(":")
        if kind not in RETRIEVER_MODES:
            raise ConfigError(f"unknown retriever spec {spec!r}; valid: dense[:MODEL], bm25[:MODEL], hybrid[:MODEL], each optionally "
                              f"followed by {RERANK}[:CE_MODEL] and then {UNDERSTAND} (MODEL = hub name or local dir; default "
                              f"embedding.model; CE_MODEL = a cross-encoder, default retrieval.rerank_model)")
        return cls(kind, model or None, rerank, rerank_model, understand)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'dense:MODEL' -> ('dense', 'MODEL'); 'bm25+rerank+understand' -> ('bm25', None). Raises ConfigError listing the valid forms."""
    parsed = Spec.parse(spec)
    return parsed.kind, parsed.model


class RetrieverFactory:
    """Builds retrievers from spec strings. Embedders, Chroma indexes and BM25 indexes are loaded once and shared by every
    retriever built from them (filters, depth and understanding are per retriever and cost nothing to vary); a BM25 index
    is rebuilt from the collection and loaded again when an ingest (on any machine) records a new version. Safe to share between threads (UI sessions, server requests)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store
        self._embedders: dict[str, Embedder] = {}
        self._facts: dict[str, dict[str, Any]] = {}  # model -> its collection facts
        self._indexes: dict[str, tuple[Any, Any]] = {}  # collection or BM25 dir -> (version, loaded index)
        self._lock = threading.RLock()  # loading an index can build its embedder under the same lock
        self._building: dict[str, threading.Lock] = {}  # collection -> its BM25 rebuild (not under the lock above)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrieverFactory:
        """The factory over the store `settings` name (embedded Chroma on disk or a Chroma server)."""
        from rag_app.store import Store

        return cls(settings, Store.from_settings(settings))

    def embedder(self, model: str | None = None) -> Embedder:
        from rag_app.embeddings import build_embedder

        model = model or self.settings.embedding.model
        with self._lock:
            if model not in self._embedders:
                self._embedders[model] = build_embedder(self.settings.embedding.model_copy(update={"model": model}))
            return self._embedders[model]

    def collection(self, model: str | None = None) -> Collection:
        """The model's collection, fetched again on every call (its metadata carries the content version)."""
        model = model or self.settings.embedding.model
        with self._lock:  # the facts hash the model's weights (~0.1 s): once per model, not per request
            if model not in self._facts:
                self._facts[model] = self.store.facts_for(self.embedder(model), self.settings.ingest)
        return self.store.collection(self._facts[model], create=False)

    def build(self, spec: str | None = None, filters: ListingFilters | None = None, top_k: int | None = None,
              understand: bool = False) -> BaseRetriever:
        """The retriever a spec names; with `understand` (or a `+understand` spec) it applies the constraints understood
        from each question (chat, the UI and the API pass `retrieval.understand`)."""
        spec = spec or self.settings.retrieval.mode
        parsed = Spec.parse(spec)
        collection = self.collection(parsed.model)  # once per build: one round trip to the store
        if parsed.rerank:
            retriever = self._reranked(spec, parsed, filters, top_k, collection)
        else:
            retriever = self._plain(spec, filters, top_k, collection)
        if understand or parsed.understand:
            from rag_app.constrained import ConstrainedRetriever, DenseRelevance

            relevance = DenseRelevance(collection, self.embedder(parsed.model))
            rs = self.settings.retrieval
            return ConstrainedRetriever(retriever, top_k or rs.top_k, relevance, rs.understand_margin, rs.understand_reference_rank)
        return retriever

    def _plain(self, spec: str, filters: ListingFilters | None, top_k: int | None, collection: Collection) -> BaseRetriever:
        kind, model = parse_spec(spec)
        rs = self.settings.retrieval.model_copy(update={"top_k": top_k} if top_k else {})
        filters = filters if filters is not None else rs.filters

        if kind == "bm25":
            return self._bm25(collection, rs).with_filters(filters)
        if kind == "dense":
            return self._dense(collection, model, rs).with_filters(filters)
        wide = rs.model_copy(update={"top_k": max(rs.top_k, rs.candidate_k)})  # fuse deeper lists than we return
        fusion = fusion_for(rs, model or self.settings.embedding.model)
        return HybridRetriever(self._dense(collection, model, wide), self._bm25(collection, wide), rs, fusion).with_filters(filters)

    def _reranked(self, spec: str, parsed: Spec, filters: ListingFilters | None, top_k: int | None,
                  collection: Collection) -> BaseRetriever:
        """The spec's first stage, `rerank_depth` listings deep, re-scored by the cross-encoder (loaded once per model)."""
        from rag_app.rerank import CrossEncoderScorer, RerankRetriever, first_chunks

        rs = self.settings.retrieval
        name = parsed.rerank_model or rs.rerank_model
        scorer = self._shared(f"rerank:{name}", 0.0, lambda: CrossEncoderScorer.load(name, self.settings.embedding.device))
        k = top_k or rs.top_k
        inner = self._plain(spec, filters, max(k, rs.rerank_depth), collection)
        return RerankRetriever(inner, scorer, first_chunks(collection), k, rs.rerank_depth)

    def _dense(self, collection: Collection, model: str | None, rs: RetrievalSettings) -> DenseRetriever:
        index = self._shared(f"dense:{collection.name}", 0.0, lambda: DenseRetriever.over(collection, self.embedder(model), rs).index)
        return DenseRetriever(index, rs)

    def _bm25(self, collection: Collection, rs: RetrievalSettings) -> BM25ListingRetriever:
        path = self._fresh_bm25(collection)
        base = self._shared(f"bm25:{path}", bm25_version(path), lambda: BM25ListingRetriever.load(path, rs))
        return BM25ListingRetriever(base.bm25, base.metadata, rs)

    def _fresh_bm25(self, collection: Collection) -> Path:
        """This machine's BM25 copy of `collection`, rebuilt from the collection when an ingest (here or on any machine
        writing to the same Chroma server) recorded another version; one build at a time per collection, across processes."""
        from filelock import FileLock

        path, wanted = bm25_dir(self.settings.home, collection.name), content_version(collection)

        def stale() -> bool:
            local = bm25_version(path)
            return local is None or (wanted is not None and local != wanted)

        if stale():
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                building = self._building.setdefault(collection.name, threading.Lock())
            with building, FileLock(f"{path}.lock"):
                if stale():  # another thread or process may have built it meanwhile
                    logger.info("rebuilding the BM25 copy of %s (version %s -> %s)", collection.name, bm25_version(path), wanted)
                    build_bm25(collection, path, wanted)
        return path

    def _shared(self, key: str, version: float | str | None, load: Callable[[], Any]) -> Any:
        with self._lock:
            held = self._indexes.get(key)
            if held is None or held[0] != version:
                self._indexes[key] = (version, load())
            return self._indexes[key][1]
