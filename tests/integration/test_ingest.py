"""Ingestion against the real packaged MiniLM and a real on-disk Chroma."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import Ingestor, read_listings
from ingest.sources import SAMPLE_PATH
from rag_app.errors import FingerprintMismatchError, NothingIngestedError
from tests.conftest import listing_row, write_jsonl


@pytest.fixture
def settings(settings):
    """These tests check bookkeeping over several chunks per listing: embed every chunk (ingest.max_chunks was unset before it became 1)."""
    return settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_chunks": None})})


def sample_rows(n: int) -> list[dict]:
    return [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:n]]


def ingest(settings, embedder, store, path: Path, **kw):
    return Ingestor(settings, embedder, store).run(read_listings(str(path), settings), **kw)


def test_rerun_adds_nothing_edit_replaces_prune_removes(tmp_path, settings, embedder, store) -> None:
    rows = sample_rows(10)
    src = write_jsonl(tmp_path / "jobs.jsonl", rows)
    first = ingest(settings, embedder, store, src)
    assert (first.added, first.updated, first.unchanged, first.rejected) == (10, 0, 0, 0)
    coll = Ingestor(settings, embedder, store).collection
    n_chunks = coll.count()
    assert n_chunks == first.chunks_written > 10  # sample descriptions span several chunks

    again = ingest(settings, embedder, store, src)
    assert (again.added, again.updated, again.unchanged, again.chunks_written) == (0, 0, 10, 0)
    assert coll.count() == n_chunks

    rows[3] = {**rows[3], "description": rows[3]["description"] + "\n\nNew: a signing bonus of $5,000."}
    edited = ingest(settings, embedder, store, write_jsonl(src, rows))
    assert (edited.added, edited.updated, edited.unchanged) == (0, 1, 9)
    got = coll.get(where={"listing_id": rows[3]["id"]}, include=["metadatas", "documents"])
    assert len({m["content_hash"] for m in got["metadatas"]}) == 1
    assert any("signing bonus" in d for d in got["documents"])
    assert len(got["ids"]) == got["metadatas"][0]["n_chunks"]

    kept = ingest(settings, embedder, store, write_jsonl(src, rows[:8]))
    assert kept.pruned == 0 and {m["listing_id"] for m in coll.get(include=["metadatas"])["metadatas"]} >= {rows[9]["id"]}
    pruned = ingest(settings, embedder, store, src, prune=True)
    assert pruned.pruned == 2
    assert {m["listing_id"] for m in coll.get(include=["metadatas"])["metadatas"]} == {r["id"] for r in rows[:8]}


def test_every_chunk_embeds_the_listing_header(tmp_path, settings, embedder, store) -> None:
    row = sample_rows(1)[0]
    ingest(settings, embedder, store, write_jsonl(tmp_path / "one.jsonl", [row]))
    coll = Ingestor(settings, embedder, store).collection
    got = coll.get(include=["metadatas", "documents", "embeddings"])
    header = " | ".join(row[k] for k in ("title", "company", "location", "salary", "work_type") if row[k])
    assert len(got["ids"]) >= 2
    for meta, doc, vec in zip(got["metadatas"], got["documents"], got["embeddings"]):
        assert meta["listing_id"] == row["id"] and meta["title"] == row["title"] and meta["header"] == header
        with_header = embedder.encode_documents([f"{header}\n\n{doc}"])[0]
        without = embedder.encode_documents([doc])[0]
        assert float(np.dot(with_header, vec)) > 0.999 > float(np.dot(without, vec))


def test_bad_rows_are_rejected_with_reasons_and_the_rest_lands(tmp_path, settings, embedder, store) -> None:
    good = [listing_row(i) for i in range(3)]
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r).encode() for r in good]
    lines += [json.dumps(listing_row(10, title=None)).encode(),
              json.dumps(listing_row(11, description="<script>alert(1)</script>")).encode(),
              json.dumps(listing_row(12, description="y" * 1_048_576)).encode(),
              json.dumps(listing_row(13)).encode().replace(b"Austin", b"Aust\xefn"),
              b"{broken json",
              json.dumps(listing_row(0, id="t-0-repost")).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    summary = ingest(settings, embedder, store, path)
    assert (summary.added, summary.rejected, summary.duplicates) == (3, 5, 1)
    rejects = [json.loads(line) for line in Path(summary.rejects_path).read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in rejects}
    assert reasons["t-10"] == "missing title" and "after cleaning" in reasons["t-11"]
    assert "max_description_chars" in reasons["t-12"] and "not valid UTF-8" in reasons["t-13"]
    assert any("invalid JSON" in r["reason"] and r["row"] == 8 for r in rejects)


def test_one_failing_listing_does_not_kill_its_batch(tmp_path, settings, embedder, store) -> None:
    class PoisonedEncoder:  # fault injection at the encoder seam; everything else is the real embedder
        def __getattr__(self, name):
            return getattr(embedder, name)

        def encode_documents(self, texts):
            if any("POISON" in t for t in texts):
                raise RuntimeError("encoder blew up")
            return embedder.encode_documents(texts)

    rows = [listing_row(i) for i in range(4)] + [listing_row(9, description="POISON pill listing. " * 5)]
    summary = Ingestor(settings, PoisonedEncoder(), store).run(read_listings(str(write_jsonl(tmp_path / "p.jsonl", rows)), settings))
    assert (summary.added, summary.rejected) == (4, 1)
    assert "embedding failed" in json.loads(Path(summary.rejects_path).read_text())["reason"]
    assert json.loads(Path(summary.rejects_path).read_text())["row"] == 5  # the listing's line in the source, not 0


def test_oversized_header_fields_are_rejected_when_read_with_their_row(tmp_path, settings) -> None:
    rows = [listing_row(0), listing_row(1, title="Nurse " * 20_000), listing_row(2, location="Austin, TX " * 100), listing_row(3)]
    read = read_listings(str(write_jsonl(tmp_path / "long.jsonl", rows)), settings)
    assert [x.id for x in read.listings] == ["t-0", "t-3"] and read.source_rows == {"t-0": 1, "t-3": 4}
    assert [(r.row, r.id) for r in read.rejects] == [(2, "t-1"), (3, "t-2")]
    assert read.rejects[0].reason == "title is 120,000 chars, over ingest.max_title_chars=300"
    assert read.rejects[1].reason == "location is 1,100 chars, over ingest.max_field_chars=300"


def test_a_listing_that_fails_chunking_is_rejected_with_its_source_row(tmp_path, settings, embedder, store) -> None:
    loose = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_title_chars": 100_000})})
    rows = [listing_row(0), listing_row(1), listing_row(2, title="Nurse " * 2000)]  # a header longer than a chunk
    summary = ingest(loose, embedder, store, write_jsonl(tmp_path / "j.jsonl", rows))
    assert (summary.added, summary.rejected) == (2, 1)
    reject = json.loads(Path(summary.rejects_path).read_text())
    assert reject["id"] == "t-2" and reject["row"] == 3 and reject["reason"].startswith("chunking failed")


def test_a_near_duplicate_repost_is_indexed_once_and_reported(tmp_path, settings, embedder, store) -> None:
    rows = sample_rows(3)
    repost = {**rows[0], "id": "repost-x", "description": rows[0]["description"].replace("properly", "right", 1)}
    summary = ingest(settings, embedder, store, write_jsonl(tmp_path / "j.jsonl", [*rows, repost]))
    assert (summary.added, summary.near_duplicates, summary.duplicates, summary.rejected) == (3, 1, 0, 0)
    folds = [json.loads(line) for line in Path(summary.near_duplicates_path).read_text().splitlines()]
    assert [(f["id"], f["row"], f["kept"], f["kept_row"]) for f in folds] == [("repost-x", 4, rows[0]["id"], 1)]
    coll = Ingestor(settings, embedder, store).collection
    assert coll.get(where={"listing_id": "repost-x"})["ids"] == []  # never ranks next to its original


def test_nothing_ingestable_raises(tmp_path, settings, embedder, store) -> None:
    src = write_jsonl(tmp_path / "bad.jsonl", [listing_row(i, description="") for i in range(3)])
    with pytest.raises(NothingIngestedError, match="all 3 rows rejected"):
        ingest(settings, embedder, store, src)


def test_another_embedder_gets_its_own_collection_and_the_guard_refuses_mixing(tmp_path, settings, embedder, store, other_model_dir) -> None:
    from rag_app.embeddings import build_embedder
    from rag_app.settings import EmbeddingSettings
    from rag_app.store import Store

    src = write_jsonl(tmp_path / "jobs.jsonl", [listing_row(i) for i in range(4)])
    base = ingest(settings, embedder, store, src)
    other = build_embedder(EmbeddingSettings(model=str(other_model_dir)))
    second = ingest(settings, other, store, src)
    assert second.collection != base.collection and second.added == 4
    assert {c.name: c.count for c in store.collections()} == {base.collection: 4, second.collection: 4}

    pinned = Store(store.client, pinned_collection=base.collection)
    with pytest.raises(FingerprintMismatchError, match=rf"collection '{base.collection}' holds vectors of .*use collection '{second.collection}'"):
        Ingestor(settings, other, pinned)
    assert store.client.get_collection(base.collection).count() == 4


@pytest.mark.shared
@pytest.mark.parametrize("name", ["jobs_a.jsonl", "jobs_b.jsonl"])
def test_real_corpora_ingest_cleanly(name, settings, embedder, store) -> None:
    from tests.conftest import SHARED_DATA

    read = read_listings(str(SHARED_DATA / "jobs" / name), settings, limit=12)
    summary = Ingestor(settings, embedder, store).run(read)
    assert summary.added == 12 and summary.rejected == 0


def test_max_chunks_keeps_the_opening_and_gets_its_own_collection(tmp_path, settings, embedder, store) -> None:
    rows = sample_rows(6)
    src = write_jsonl(tmp_path / "jobs.jsonl", rows)
    full = ingest(settings, embedder, store, src)
    first_only = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"max_chunks": 1})})
    one = ingest(first_only, embedder, store, src)
    assert one.added == 6 and one.chunks_written == 6 < full.chunks_written  # one vector per listing
    coll_all, coll_one = Ingestor(settings, embedder, store).collection, Ingestor(first_only, embedder, store).collection
    assert coll_all.name != coll_one.name and coll_all.count() == full.chunks_written  # the all-chunks collection is untouched
    got = coll_one.get(include=["metadatas", "documents"])
    assert {m["chunk_index"] for m in got["metadatas"]} == {0} and {m["n_chunks"] for m in got["metadatas"]} == {1}
    by_id = {m["listing_id"]: doc for m, doc in zip(got["metadatas"], got["documents"])}
    for row in rows:  # the one chunk still stores the whole text (BM25 and the chat context read it)
        assert by_id[row["id"]].split()[-3:] == row["description"].split()[-3:]
    from rag_app.retrievers import BM25ListingRetriever, bm25_dir

    bm25 = BM25ListingRetriever.load(bm25_dir(first_only.home, coll_one.name), first_only.retrieval, None)
    checked = 0
    for i, row in enumerate(rows):  # a word only this listing has, past its first chunk, finds it
        others = " ".join(r["description"] + " " + r["title"] for j, r in enumerate(rows) if j != i).lower()
        late = row["description"][len(row["description"]) * 2 // 3:].lower()
        unique = [w for w in re.findall(r"[a-z]{6,}", late) if w not in others and w not in row["description"][:600].lower()]
        if unique:
            assert bm25.retrieve(unique[0])[0].node.metadata["listing_id"] == row["id"]
            checked += 1
    assert checked >= 2
    again = ingest(first_only, embedder, store, src)
    assert (again.added, again.unchanged, again.chunks_written) == (0, 6, 0)  # rerun: nothing duplicated
