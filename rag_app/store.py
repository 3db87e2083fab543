"""Chroma store: embedded on disk (`persistent`) or Chroma's own server (`http`), one collection per embedder fingerprint.

Every collection records the facts of the embedder that filled it (model, weights hash, dimension, chunking) in its
metadata. Writing vectors of another fingerprint into it is refused with an error naming the collection to use, so
base and fine-tuned indexes coexist side by side and never mix.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag_app.errors import ConfigError, FingerprintMismatchError, unknown_mode
from rag_app.model_paths import fingerprint, slug
from rag_app.records import CONTENT_HASH, LISTING_ID, N_CHUNKS
from rag_app.settings import STORE_MODES

if TYPE_CHECKING:
    from chromadb.api import ClientAPI
    from chromadb.api.models.Collection import Collection
    from llama_index.vector_stores.chroma import ChromaVectorStore

    from rag_app.embeddings import Embedder
    from rag_app.settings import IngestSettings, Settings

logger = logging.getLogger(__name__)
COLLECTION_PREFIX = "jobs"
PAGE = 5000


@dataclass(frozen=True)
class ListingState:
    """What the collection holds for one listing."""

    content_hash: str
    chunks: int
    expected: int

    @property
    def complete(self) -> bool:
        return self.content_hash != "" and self.chunks == self.expected


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    count: int
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        m = self.metadata
        return f"{m.get('model', '?')} · {m.get('fingerprint', '?')} · {self.count} chunks"


def pages(collection: Collection, include: list[str], size: int = PAGE) -> Iterator[dict[str, Any]]:
    """The whole collection, one `collection.get` page at a time (bounded memory per call)."""
    offset = 0
    while True:
        page = collection.get(include=include, limit=size, offset=offset)
        yield page
        if len(page["ids"]) < size:
            return
        offset += size


def build_client(settings: Settings) -> ClientAPI:
    """Chroma client for `store.mode`; telemetry is always off."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    builders: dict[str, Callable[[], ClientAPI]] = {
        "persistent": lambda: _open_persistent(settings.dir("chroma"), chroma_settings),
        "http": lambda: chromadb.HttpClient(host=settings.store.host, port=settings.store.port, ssl=settings.store.ssl,
                                            headers=settings.store.headers, settings=chroma_settings),
    }
    if settings.store.mode not in builders:
        raise unknown_mode("store", settings.store.mode, STORE_MODES)
    try:
        return builders[settings.store.mode]()
    except Exception as exc:  # chromadb raises plain ValueError/ConnectionError for an unreachable server
        where = f"{settings.store.host}:{settings.store.port}" if settings.store.mode == "http" else str(settings.chroma_path)
        raise ConfigError(f"cannot open Chroma ({settings.store.mode}) at {where}: {exc}. "
                          "For http mode start a server with `chroma run --path DIR --host 127.0.0.1 --port PORT`.") from exc


def _open_persistent(path: Path, chroma_settings: Any) -> ClientAPI:
    """Embedded Chroma on disk. Opening a new directory creates its tables, and two processes doing that at once (two
    ingests started together) collide ("table collections already exists"): one opener at a time per directory."""
    import chromadb
    from filelock import FileLock

    with FileLock(str(path / ".jobrag-open.lock")):
        return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class Store:
    """Collections of listing chunks, keyed by embedder fingerprint."""

    def __init__(self, client: ClientAPI, pinned_collection: str | None = None) -> None:
        self.client = client
        self.pinned_collection = pinned_collection

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(build_client(settings), settings.store.collection)

    # -- naming and the fingerprint guard -------------------------------------------------------------------------
    @staticmethod
    def collection_facts(embedder_facts: dict[str, Any], chunk_size: int, chunk_overlap: int, max_chunks: int | None = None) -> dict[str, Any]:
        facts = {**embedder_facts, "chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        if max_chunks is not None:  # only when set, so collections built before the setting keep their fingerprint
            facts["max_chunks"] = max_chunks
        return {**facts, "fingerprint": fingerprint(facts)}

    @classmethod
    def facts_for(cls, embedder: Embedder, ingest: IngestSettings) -> dict[str, Any]:
        """Collection facts for an embedder and the ingest settings; chunk size is clamped to the model's window."""
        chunk_size = ingest.chunk_size
        if (window := embedder.max_seq_length) is not None and chunk_size > window - 2:
            chunk_size = window - 2  # room for [CLS]/[SEP]: longer chunks would be truncated silently
        facts = cls.collection_facts(embedder.fingerprint_facts(), chunk_size, ingest.chunk_overlap, ingest.max_chunks)
        return {**facts, "model_ref": embedder.model_ref}  # where to load it from; not fingerprinted

    @staticmethod
    def derived_name(facts: dict[str, Any]) -> str:
        return f"{COLLECTION_PREFIX}-{slug(str(facts['model']))}-{facts['fingerprint']}"

    def collection(self, facts: dict[str, Any], create: bool = True) -> Collection:
        """The collection for these embedder+chunking facts; refuses one that holds another fingerprint."""
        name = self.pinned_collection or self.derived_name(facts)
        existing = {c.name for c in self.client.list_collections()}
        if name not in existing:
            if not create:
                raise ConfigError(f"no collection {name!r} yet for {facts['model']}: run `jobrag ingest` with this embedder first")
            metadata = {k: v if isinstance(v, (int, float, bool)) else str(v) for k, v in facts.items()}
            metadata.update({"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "hnsw:space": "cosine"})
            logger.info("creating collection %s for %s", name, facts["model"])
            try:
                return self.client.create_collection(name=name, metadata=metadata, embedding_function=None)
            except Exception:  # another machine created it first (shards starting together): check it like any existing one
                if name not in {c.name for c in self.client.list_collections()}:
                    raise
        coll = self.client.get_collection(name=name, embedding_function=None)
        held = (coll.metadata or {}).get("fingerprint")
        if held != facts["fingerprint"]:
            raise FingerprintMismatchError(
                f"collection {name!r} holds vectors of {(coll.metadata or {}).get('model', 'an unknown embedder')} "
                f"(fingerprint {held}); this embedder is {facts['model']} (fingerprint {facts['fingerprint']}): "
                f"use collection {self.derived_name(facts)!r} (unset store.collection to let jobrag pick it)")
        return coll

    def collections(self) -> list[CollectionInfo]:
        """Every jobrag collection, newest first."""
        infos = [CollectionInfo(c.name, c.count(), dict(c.metadata or {})) for c in self.client.list_collections()]
        return sorted((i for i in infos if "fingerprint" in i.metadata), key=lambda i: str(i.metadata.get("created_at")), reverse=True)

    # -- listing-level bookkeeping ----------------------------------------------------------------------------------
    @staticmethod
    def vector_store(collection: Collection) -> ChromaVectorStore:
        from llama_index.vector_stores.chroma import ChromaVectorStore

        return ChromaVectorStore(chroma_collection=collection)

    @staticmethod
    def listing_states(collection: Collection) -> dict[str, ListingState]:
        """listing id -> (hash, chunks held, chunks expected); a listing with mixed hashes reads as incomplete."""
        hashes: dict[str, set[str]] = {}
        counts: dict[str, int] = {}
        expected: dict[str, int] = {}
        for page in pages(collection, ["metadatas"]):
            for meta in page["metadatas"] or []:
                lid = str(meta[LISTING_ID])
                hashes.setdefault(lid, set()).add(str(meta.get(CONTENT_HASH, "")))
                counts[lid] = counts.get(lid, 0) + 1
                expected[lid] = int(meta.get(N_CHUNKS, 0))
        return {lid: ListingState(next(iter(h)) if len(h) == 1 else "", counts[lid], expected[lid]) for lid, h in hashes.items()}

    @staticmethod
    def delete_listings(collection: Collection, listing_ids: list[str]) -> None:
        for start in range(0, len(listing_ids), 500):
            collection.delete(where={LISTING_ID: {"$in": listing_ids[start:start + 500]}})
