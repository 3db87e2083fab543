"""Ingestion: source rows -> clean listings -> header-carrying chunks -> embeddings -> the embedder's Chroma collection.

Idempotent and resumable. Every chunk carries its listing id, the listing's content hash and the listing's chunk
count, so a re-run can tell, per listing, whether the collection already holds it complete and current (skip), holds
an old or partial copy (delete its chunks, write again) or lacks it (write). Listings are written in batches; a kill
at any point loses at most the batch in flight, which the next run repairs. Two ingests into one collection queue on
its lock (ingest/lock.py) instead of both doing the full work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from ingest.clean import to_listing
from ingest.lock import CollectionLock
from ingest.near_dupes import Fold, NearDuplicates
from ingest.sources import RowError, open_source
from rag_app.errors import NothingIngestedError
from rag_app.records import BOOKKEEPING_KEYS, CHUNK_INDEX, CONTENT_HASH, HEADER, LISTING_ID, N_CHUNKS, IngestSummary, JobListing, Reject
from rag_app.retrievers import bm25_dir, build_bm25, stamp_version

if TYPE_CHECKING:
    from llama_index.core.schema import TextNode

    from rag_app.embeddings import Embedder
    from rag_app.settings import Settings
    from rag_app.store import Store

logger = logging.getLogger(__name__)
EMBED_KEYS = (HEADER,)


@dataclass
class StageTimes:
    """Seconds and volumes per stage, for `jobrag bench ingest`."""

    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "chunk": 0.0, "embed": 0.0, "write": 0.0, "bm25": 0.0})
    token_batches: list[list[int]] = field(default_factory=list)  # word pieces per text, one list per encode call

    def add(self, stage: str, started: float) -> None:
        self.seconds[stage] += time.perf_counter() - started


@dataclass
class ReadResult:
    """Clean, validated, de-duplicated listings of one source, with what was turned away."""

    source: str
    listings: list[JobListing]
    rejects: list[Reject]
    duplicates: int
    rows: int
    seconds: float
    source_rows: dict[str, int] = field(default_factory=dict)  # listing id -> its row in the source, for later rejects
    folds: list[Fold] = field(default_factory=list)  # near-duplicates folded into an earlier listing

    @property
    def near_duplicates(self) -> int:
        return len(self.folds)

    def shard(self, k: int, n: int) -> ReadResult:
        """Shard K of N: the listings whose id hashes to it (every machine reading the same source agrees, so N machines
        ingesting shards 1..N write each listing exactly once)."""
        mine = [x for x in self.listings if in_shard(x.id, k, n)]
        return ReadResult(self.source, mine, self.rejects, self.duplicates, self.rows, self.seconds, self.source_rows, self.folds)


def in_shard(listing_id: str, k: int, n: int) -> bool:
    """Whether `listing_id` belongs to shard K of N (a stable hash: the same on every machine and Python run)."""
    return int.from_bytes(hashlib.blake2b(listing_id.encode(), digest_size=8).digest(), "big") % n == k - 1


def read_listings(spec: str, settings: Settings, limit: int | None = None) -> ReadResult:
    """The first `limit` accepted listings of `spec`; raises SourceError at once for a source that cannot be read."""
    started = time.perf_counter()
    source = open_source(spec, settings.ingest.column_map, limit)
    listings: dict[str, JobListing] = {}
    seen_reposts: set[str] = set()
    rejects: list[Reject] = []
    source_rows: dict[str, int] = {}
    threshold = settings.ingest.near_duplicate_threshold
    near = NearDuplicates(threshold) if threshold else None
    folds: list[Fold] = []
    duplicates = rows = 0
    for row_no, raw in source.rows:
        if limit is not None and len(listings) >= limit:
            break
        rows += 1
        result = raw.reason if isinstance(raw, RowError) else _safe_listing(raw, source.mapping, settings)
        if isinstance(result, str):
            rid = raw.get(source.mapping.get("id", "id")) if isinstance(raw, dict) else None
            rejects.append(Reject(source=source.name, row=row_no, id=str(rid) if isinstance(rid, (str, int)) else None, reason=result))
            continue
        if result.repost_key() in seen_reposts:
            duplicates += 1
            continue
        if result.id in listings:
            rejects.append(Reject(source=source.name, row=row_no, id=result.id, reason="duplicate id with different content"))
            continue
        if near is not None and (fold := near.check(result, row_no)):
            folds.append(fold)
            continue
        seen_reposts.add(result.repost_key())
        listings[result.id] = result
        source_rows[result.id] = row_no
    if folds:
        logger.info("folded %d near-duplicate listing(s) of %s into earlier copies", len(folds), source.name)
    return ReadResult(source.name, list(listings.values()), rejects, duplicates, rows, time.perf_counter() - started, source_rows, folds)


def _safe_listing(raw: Any, mapping: dict[str, str], settings: Settings) -> JobListing | str:
    try:
        cfg = settings.ingest
        return to_listing(raw, mapping, cfg.max_description_chars, cfg.min_description_chars, max_title_chars=cfg.max_title_chars,
                          max_field_chars=cfg.max_field_chars)
    except Exception as exc:  # one bad row must never kill the batch
        return f"could not normalise row: {exc.__class__.__name__}: {exc}"


class Chunker:
    """llama-index SentenceSplitter sized in the embedder's own tokens; the listing header is embedded with every chunk.

    `max_chunks` embeds only the first N chunks of a listing (the header and the opening of the description): listings
    end in benefits and equal-opportunity boilerplate that every listing shares, and on dev_a one vector per listing
    retrieves better than all chunks, at a quarter of the ingest time. The last kept chunk still stores the rest of the
    text (for BM25, which indexes whole listings, and for the chat context); its embedding sees the opening only.
    """

    def __init__(self, chunk_size: int, chunk_overlap: int, tokenizer: Any | None, max_chunks: int | None = None) -> None:
        from llama_index.core.node_parser import SentenceSplitter

        self.splitter = SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, tokenizer=tokenizer)
        self.max_chunks = max_chunks

    def __call__(self, listing: JobListing) -> list[TextNode]:
        from llama_index.core import Document

        meta = {HEADER: listing.header(), **listing.chunk_metadata()}
        hidden = [k for k in meta if k not in EMBED_KEYS]
        doc = Document(id_=listing.id, text=listing.description, metadata=meta, excluded_embed_metadata_keys=hidden,
                       excluded_llm_metadata_keys=[k for k in hidden if k != LISTING_ID], metadata_template="{value}",
                       text_template="{metadata_str}\n\n{content}")
        nodes = self.splitter.get_nodes_from_documents([doc])
        if self.max_chunks is not None and len(nodes) > self.max_chunks:
            nodes = nodes[: self.max_chunks]
            last = nodes[-1]
            if last.start_char_idx is not None:  # keep the whole remaining text stored; the embedder truncates it
                last.set_content(listing.description[last.start_char_idx:])
                last.end_char_idx = len(listing.description)
        content_hash = listing.content_hash()
        for i, node in enumerate(nodes):
            node.id_ = f"{listing.id}#{content_hash}#{i}"
            node.metadata.update({CONTENT_HASH: content_hash, CHUNK_INDEX: i, N_CHUNKS: len(nodes)})
            node.excluded_embed_metadata_keys = [*hidden, *BOOKKEEPING_KEYS]
            node.excluded_llm_metadata_keys = [*doc.excluded_llm_metadata_keys, *BOOKKEEPING_KEYS]
        return nodes


class Ingestor:
    """Writes listings into the collection that belongs to `embedder`'s fingerprint."""

    def __init__(self, settings: Settings, embedder: Embedder, store: Store) -> None:
        self.settings = settings
        self.embedder = embedder
        self.facts = store.facts_for(embedder, settings.ingest)
        self.chunker = Chunker(self.facts["chunk_size"], settings.ingest.chunk_overlap, embedder.tokenizer(), settings.ingest.max_chunks)
        self.store = store
        self.collection = store.collection(self.facts)
        self.times = StageTimes()
        self.count_tokens = False  # `jobrag bench ingest` turns this on

    def run(self, read: ReadResult, prune: bool = False, progress: bool = True, shard: tuple[int, int] | None = None) -> IngestSummary:
        """Write `read` into the collection, holding its lock (per shard K of N when given) so concurrent ingests queue. With
        `shard`, only the shard's listings are written (and pruned): N machines can ingest one source into one Chroma server."""
        if shard is not None:
            read = read.shard(*shard)
        with CollectionLock(self.settings.home / "locks", self.collection.name, read.source, self.settings.ingest.lock_timeout_s, shard):
            return self._run(read, prune, progress, shard)

    def _run(self, read: ReadResult, prune: bool, progress: bool, shard: tuple[int, int] | None = None) -> IngestSummary:
        started = time.perf_counter() - read.seconds
        self.times.seconds["read"] += read.seconds
        spec, listings, rejects = read.source, read.listings, list(read.rejects)
        summary = IngestSummary(collection=self.collection.name, fingerprint=self.facts["fingerprint"], source=spec,
                                rows=read.rows, duplicates=read.duplicates, near_duplicates=read.near_duplicates)
        states = self.store.listing_states(self.collection)
        todo: list[JobListing] = []
        for listing in listings:
            state = states.get(listing.id)
            if state is not None and state.complete and state.content_hash == listing.content_hash():
                summary.unchanged += 1
            else:
                todo.append(listing)
        batch = self.settings.ingest.batch_listings
        with tqdm(total=len(todo), desc="ingest", unit="listing", disable=not progress) as bar:
            for start in range(0, len(todo), batch):
                part = todo[start:start + batch]
                written, failed = self._write_batch(part, states)
                summary.added += sum(lid not in states for lid in written)
                summary.updated += sum(lid in states for lid in written)
                summary.chunks_written += sum(written.values())
                rejects.extend(Reject(source=spec, row=read.source_rows.get(lid, 0), id=lid, reason=why) for lid, why in failed)
                bar.update(len(part))
                logger.info("committed batch %d: %d listings", start // batch + 1, len(written))
        if prune:
            keep = {x.id for x in listings} | {r.id for r in rejects if r.id}
            gone = sorted(lid for lid in set(states) - keep if shard is None or in_shard(lid, *shard))  # never another shard's
            self.store.delete_listings(self.collection, gone)
            summary.pruned = len(gone)
        bm25_path = bm25_dir(self.settings.home, self.collection.name)
        changed = bool(summary.added or summary.updated or summary.pruned)
        if changed or not (bm25_path / "jobrag.json").exists():
            t = time.perf_counter()
            # a changed collection gets a new version: every machine serving it rebuilds its BM25 copy from the store
            build_bm25(self.collection, bm25_path, stamp_version(self.collection) if changed else None)
            self.times.add("bm25", t)
        summary.rejected = len(rejects)
        summary.rejects_path = self._write_report("ingest-rejects.jsonl", [r.model_dump() for r in rejects])
        summary.near_duplicates_path = self._write_report("ingest-near-duplicates.jsonl", [{"source": spec, **asdict(f)} for f in read.folds])
        summary.seconds = time.perf_counter() - started
        if summary.added + summary.updated + summary.unchanged == 0 and rejects:
            raise NothingIngestedError(f"nothing ingested from {spec!r}: all {len(rejects)} rows rejected (reasons in {summary.rejects_path})")
        return summary

    def _write_batch(self, part: list[JobListing], states: dict) -> tuple[dict[str, int], list[tuple[str, str]]]:
        """Chunk, embed and write one batch; a listing that fails is reported, the others still land."""
        nodes_by_listing: dict[str, list[TextNode]] = {}
        failed: list[tuple[str, str]] = []
        t = time.perf_counter()
        for listing in part:
            try:
                nodes_by_listing[listing.id] = self.chunker(listing)
            except Exception as exc:
                failed.append((listing.id, f"chunking failed: {exc.__class__.__name__}: {exc}"))
        self.times.add("chunk", t)
        try:
            self._embed(n for ns in nodes_by_listing.values() for n in ns)
        except Exception as exc:  # isolate the listing that breaks the batch
            logger.warning("batch embedding failed (%s); retrying listing by listing", exc)
            for lid in list(nodes_by_listing):
                try:
                    self._embed(nodes_by_listing[lid])
                except Exception as inner:
                    failed.append((lid, f"embedding failed: {inner.__class__.__name__}: {inner}"))
                    del nodes_by_listing[lid]
        t = time.perf_counter()
        stale = [lid for lid in nodes_by_listing if lid in states]
        self.store.delete_listings(self.collection, stale)
        nodes = [n for ns in nodes_by_listing.values() for n in ns]
        if nodes:
            self.store.vector_store(self.collection).add(nodes)
        self.times.add("write", t)
        return {lid: len(ns) for lid, ns in nodes_by_listing.items()}, failed

    def _embed(self, nodes: Iterable[TextNode]) -> None:
        from llama_index.core.schema import MetadataMode

        nodes = list(nodes)
        texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        if not texts:
            return
        t = time.perf_counter()
        vectors = self.embedder.encode_documents(texts)
        self.times.add("embed", t)
        if self.count_tokens:
            self.times.token_batches.append(self.embedder.count_tokens(texts))
        for node, vector in zip(nodes, vectors):
            node.embedding = [float(x) for x in vector]

    def _write_report(self, name: str, rows: list[dict[str, Any]]) -> str:
        path = self.settings.dir("reports") / name
        with path.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return str(path)
