"""Changed defaults (ingest.max_chunks 1, retrieval.mode hybrid, embedding.backend) never strand or corrupt a collection
built under the old ones: it keeps its name and answers when its settings are used; hybrid without a local BM25 copy
rebuilds it from the collection."""

from __future__ import annotations

import json
import shutil

from ingest.pipeline import Ingestor, read_listings
from ingest.sources import SAMPLE_PATH
from rag_app.model_paths import fingerprint
from rag_app.retriever_choice import retriever_label
from rag_app.retrievers import RetrieverFactory, bm25_dir
from rag_app.settings import load_settings
from rag_app.store import Store
from tests.conftest import write_jsonl

OLD_FACT_KEYS = {"mode", "model", "weights", "dim", "max_seq_length", "query_prompt", "document_prompt", "chunk_size", "chunk_overlap"}


def test_a_collection_made_under_the_old_defaults_still_answers(tmp_path, embedder) -> None:
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:16]]
    src = str(write_jsonl(tmp_path / "jobs.jsonl", rows))
    old = load_settings(home=tmp_path / "home", ingest={"max_chunks": None, "batch_listings": 8})  # as before the upgrade; torch
    store = Store.from_settings(old)
    made = Ingestor(old, embedder, store).run(read_listings(src, old), progress=False)
    facts = {**embedder.fingerprint_facts(), "chunk_size": 254, "chunk_overlap": 32}
    assert set(facts) == OLD_FACT_KEYS and made.fingerprint == fingerprint(facts)  # the name the old code derived
    old_chunks = store.collection(Store.facts_for(embedder, old.ingest), create=False).count()
    assert old_chunks == made.chunks_written > len(rows)

    new = load_settings(home=tmp_path / "home", ingest={"batch_listings": 8})
    assert (new.ingest.max_chunks, new.retrieval.mode, new.embedding.backend) == (1, "hybrid", "torch")
    fresh = Ingestor(new, embedder, store).run(read_listings(src, new), progress=False)
    assert fresh.collection != made.collection and fresh.chunks_written == len(rows)  # a new collection ...
    assert store.collection(Store.facts_for(embedder, old.ingest), create=False).count() == old_chunks  # ... the old one untouched

    factory = RetrieverFactory(old, store)  # its settings, and the new default retriever
    assert old.retrieval.mode == "hybrid" and factory.collection().name == made.collection
    hits = factory.build().retrieve("registered nurse")
    assert hits and {h.node.metadata["listing_id"] for h in hits} <= {r["id"] for r in rows}

    shutil.rmtree(bm25_dir(old.home, made.collection))  # e.g. a store copied without <home>/bm25
    fresh_factory = RetrieverFactory(old, store)
    again = fresh_factory.build().retrieve("registered nurse")  # hybrid rebuilds the BM25 copy from the collection
    assert [h.node.metadata["listing_id"] for h in again] == [h.node.metadata["listing_id"] for h in hits]
    assert (bm25_dir(old.home, made.collection) / "jobrag.json").exists()


def test_retriever_labels_name_what_runs() -> None:
    torch_settings = load_settings()
    assert retriever_label("hybrid", torch_settings) == "all-MiniLM-L6-v2 + BM25"
    assert retriever_label("dense:/x/models/finetuned", torch_settings) == "finetuned"
    assert retriever_label("bm25:/x/models/finetuned", torch_settings) == "BM25"
    int8 = load_settings(embedding={"backend": "onnx-int8"})
    assert retriever_label("hybrid:sentence-transformers/all-MiniLM-L6-v2", int8) == "all-MiniLM-L6-v2 (onnx-int8) + BM25"
