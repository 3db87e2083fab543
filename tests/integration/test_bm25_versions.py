"""A machine's BM25 copy follows the collection: an ingest from another home (another machine) records a new version in
the collection's metadata, and the reader's next BM25 search rebuilds its copy from the store; an unchanged version
reuses it. Real MiniLM, one Chroma database on disk shared by two homes."""

from __future__ import annotations

from ingest.pipeline import Ingestor, read_listings
from rag_app.retrievers import RetrieverFactory, bm25_dir, bm25_version, content_version
from rag_app.settings import load_settings
from rag_app.store import Store
from tests.conftest import listing_row, write_jsonl


def test_a_bm25_copy_is_rebuilt_when_another_machine_ingests(tmp_path, embedder) -> None:
    shared = {"path": str(tmp_path / "chroma")}
    writer = load_settings(home=tmp_path / "writer", store=shared, ingest={"batch_listings": 8})
    reader = load_settings(home=tmp_path / "reader", store=shared)
    first = write_jsonl(tmp_path / "first.jsonl", [listing_row(i) for i in range(4)])
    second = write_jsonl(tmp_path / "second.jsonl", [listing_row(9, id="t-zz", title="Glacier Tour Guide", description="Lead glacier "
                                                                  "walks and teach crampon safety to visitors every morning. " * 4)])
    Ingestor(writer, embedder, Store.from_settings(writer)).run(read_listings(str(first), writer), progress=False)
    factory = RetrieverFactory.from_settings(reader)
    assert factory.build("bm25").retrieve("registered nurse")  # built from the store: the reader never ingested
    collection = factory.collection()
    copy = bm25_dir(reader.home, collection.name)
    assert bm25_version(copy) == content_version(collection) is not None
    stamp = (copy / "jobrag.json").stat().st_mtime_ns
    factory.build("hybrid").retrieve("registered nurse")
    assert (copy / "jobrag.json").stat().st_mtime_ns == stamp  # same version: the copy is reused
    Ingestor(writer, embedder, Store.from_settings(writer)).run(read_listings(str(second), writer), progress=False)
    assert content_version(factory.collection()) != bm25_version(copy)  # the writer recorded a new version
    for spec in ("bm25", "hybrid"):
        hits = factory.build(spec, top_k=1).retrieve("glacier tour guide crampon")
        assert hits[0].node.metadata["listing_id"] == "t-zz"
    assert bm25_version(copy) == content_version(factory.collection())
    assert len(list(copy.glob("v-*"))) <= 2  # older copies are cleaned up (the previous one is kept for a reader mid-load)
