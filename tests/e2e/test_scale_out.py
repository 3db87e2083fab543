"""Beyond one machine, on loopback: a Chroma server (`chroma run`), two `jobrag serve` workers with their own homes
(two machines), ingests from a third home through the CLI. Every worker sees every new listing, BM25 and hybrid
included (each rebuilds its BM25 copy from the store when an ingest records a new version); `ingest --shard K/N` on
two machines writes each listing exactly once and the lexical index covers them all."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("fastapi")
import httpx  # noqa: E402

from rag_app.server.bench import serve_subprocess  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.helpers.serve import chroma_server, cli, done, ids_found, machine  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def chroma(tmp_path_factory):
    """A real Chroma server on a free loopback port; yields its port."""
    with chroma_server(tmp_path_factory.mktemp("chroma-server")) as port:
        yield port


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    from ingest.sources import SAMPLE_PATH

    return [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[:30]]


def test_two_workers_see_every_ingest_bm25_and_hybrid_included(chroma, rows, tmp_path) -> None:
    first, second = write_jsonl(tmp_path / "first.jsonl", rows[:14]), write_jsonl(tmp_path / "second.jsonl", rows[14:24])
    with serve_subprocess(machine(tmp_path, "w1", chroma), [], tmp_path / "w1.log") as w1, \
            serve_subprocess(machine(tmp_path, "w2", chroma), [], tmp_path / "w2.log") as w2:
        assert httpx.post(f"{w1.url}/v1/search", json={"query": "nurse"}).status_code == 503  # nothing ingested yet: said, not a crash
        ingester = machine(tmp_path, "ingest", chroma)
        done(cli(ingester, "ingest", "--source", str(first), "--no-progress"))
        for worker in (w1, w2):
            for retriever in ("dense", "bm25", "hybrid"):
                assert "sample-0013" in ids_found(worker.url, "forklift operator", retriever)  # in the first ingest
        done(cli(ingester, "ingest", "--source", str(second), "--no-progress"))
        versions = set()
        for worker in (w1, w2):
            for retriever in ("dense", "bm25", "hybrid"):
                assert "sample-0022" in ids_found(worker.url, "clinical pharmacist", retriever)  # only in the second ingest
            versions |= {c["version"] for c in httpx.get(f"{worker.url}/v1/collections").json()}
        assert len(versions) == 1
        for name in ("w1", "w2"):  # each worker's own lexical copy, rebuilt from the store, covers both ingests
            [stamp] = (tmp_path / name / "home" / "bm25").glob("*/jobrag.json")
            info = json.loads(stamp.read_text())
            assert info["listings"] == 24 and info["version"] in versions


def test_two_machines_ingest_disjoint_shards_each_listing_exactly_once(chroma, rows, tmp_path) -> None:
    from rag_app.retrievers import RetrieverFactory
    from rag_app.settings import load_settings
    from rag_app.store import Store

    source = write_jsonl(tmp_path / "all.jsonl", rows)
    pinned = {"store__collection": "jobs-sharded-test"}
    shards = [cli(machine(tmp_path, f"m{k}", chroma, **pinned), "ingest", "--source", str(source), "--shard", f"{k}/2", "--json",
                  "--no-progress") for k in (1, 2)]
    summaries = [json.loads(done(p).strip().splitlines()[-1]) for p in shards]
    assert summaries[0]["added"] > 0 and summaries[1]["added"] > 0 and summaries[0]["added"] + summaries[1]["added"] == len(rows)
    settings = load_settings(home=tmp_path / "reader", store={"mode": "http", "port": chroma, "collection": "jobs-sharded-test"})
    store = Store.from_settings(settings)
    states = store.listing_states(store.client.get_collection("jobs-sharded-test"))
    assert sorted(states) == sorted(r["id"] for r in rows)  # every listing, once
    assert all(s.complete for s in states.values())  # each with exactly its own chunks (no second copy)
    factory = RetrieverFactory.from_settings(settings)
    lexical = factory.build("bm25", top_k=3)  # a worker's code path: its BM25 copy is built from the store
    assert json.loads(next((tmp_path / "reader" / "bm25").glob("*/jobrag.json")).read_text())["listings"] == len(rows)
    for row in (rows[0], rows[-1]):
        assert row["id"] in [h.node.metadata["listing_id"] for h in lexical.retrieve(row["title"])]
