"""Hybrid fusion from fusion.json, the fusion tuner, and the cross-encoder rerank stage on a tiny corpus (real MiniLM,
real Chroma, real bm25s, a real CrossEncoder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import Ingestor, read_listings
from rag_app.constrained import ConstrainedRetriever
from rag_app.errors import ConfigError
from rag_app.fusion import FUSION_FILE, Fusion, FusionChoice, dense_score, read_choice
from rag_app.model_paths import resolve_model
from rag_app.records import CHUNK_INDEX, HEADER, LISTING_ID
from rag_app.rerank import CrossEncoderScorer, RerankRetriever, first_chunks
from rag_app.retrievers import HybridRetriever, RetrieverFactory
from rag_app.settings import DEFAULT_EMBEDDER
from tests.conftest import write_jsonl
from tests.integration.test_retrieval_chat import CORPUS


def linked_copy(src: Path, dst: Path) -> Path:
    """A model dir of our own (symlinks to the packaged MiniLM's files), where a fusion.json can be written."""
    dst.mkdir()
    for p in src.iterdir():
        (dst / p.name).symlink_to(p)
    return dst


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return linked_copy(Path(resolve_model(DEFAULT_EMBEDDER)), tmp_path_factory.mktemp("models") / "minilm")


@pytest.fixture(scope="module")
def factory(tmp_path_factory, model_dir):
    from rag_app.embeddings import build_embedder
    from rag_app.settings import load_settings
    from rag_app.store import Store

    home = tmp_path_factory.mktemp("fusion-home")
    settings = load_settings(home=home, embedding={"model": str(model_dir)}, retrieval={"top_k": 3}, llm={"mode": "none"})
    store = Store.from_settings(settings)
    embedder = build_embedder(settings.embedding)
    Ingestor(settings, embedder, store).run(read_listings(str(write_jsonl(home / "corpus.jsonl", CORPUS)), settings), progress=False)
    f = RetrieverFactory(settings, store)
    f._embedders[str(model_dir)] = embedder
    return f


@pytest.fixture(scope="module")
def ce_dir(tmp_path_factory) -> Path:
    """A real cross-encoder: the packaged MiniLM with a seeded one-output head, saved as a local dir."""
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ce") / "minilm-ce"
    CrossEncoder(resolve_model(DEFAULT_EMBEDDER), num_labels=1, max_length=128).save(str(out))
    return out


def ids(hits) -> list[str]:
    return [h.node.metadata["listing_id"] for h in hits]


def test_dense_score_is_what_the_dense_retriever_reports(factory) -> None:
    query = "sushi chef omakase"
    hit = factory.build("dense").retrieve(query)[0]
    got = factory.collection().get(where={LISTING_ID: ids([hit])[0]}, include=["embeddings"])
    q = np.asarray(factory.embedder().get_query_embedding(query))
    best = max(float(np.dot(v, q) / np.linalg.norm(v) / np.linalg.norm(q)) for v in got["embeddings"])
    assert hit.score == pytest.approx(dense_score(best), abs=1e-4)  # the tuner's dense numbers are the retriever's


def test_hybrid_uses_the_models_fusion_json_unless_settings_pin_one(factory, model_dir: Path) -> None:
    query = "python spark airflow data engineer"
    assert factory.build("hybrid").fusion.source == "default"
    FusionChoice(method="convex", alpha=0.3, dense_weight=0.5, bm25_weight=0.5, rrf_k=60, metric="val ndcg@10", value=0.5,
                 candidates={"convex": {"0.3": 0.5}}, candidate_k=50).write(model_dir)
    try:
        hybrid = factory.build("hybrid")
        assert isinstance(hybrid, HybridRetriever) and hybrid.fusion.source == str(model_dir / FUSION_FILE)
        assert (hybrid.fusion.method, hybrid.fusion.alpha) == ("convex", 0.3)
        wide = factory.settings.retrieval.candidate_k  # the hybrid fuses lists this deep
        dense, bm25 = ([(h.node.metadata["listing_id"], h.score) for h in factory.build(kind, top_k=wide).retrieve(query)]
                       for kind in ("dense", "bm25"))
        expected = Fusion("convex", alpha=0.3, depth=50).rank(dense, bm25, 3)
        got = hybrid.retrieve(query)
        assert [(i, pytest.approx(s)) for i, s in expected] == list(zip(ids(got), [h.score for h in got]))
        pinned = RetrieverFactory(factory.settings.model_copy(update={"retrieval": factory.settings.retrieval.model_copy(
            update={"fusion": "rrf"})}), factory.store)
        pinned._embedders = factory._embedders
        assert pinned.build("hybrid").fusion.source == "settings"
    finally:
        (model_dir / FUSION_FILE).unlink()


def test_tuning_scores_every_weight_and_its_dense_end_is_the_evaluators_ndcg(embedder, tmp_path: Path) -> None:
    from finetune.fusion import GRID, tune, tune_saved
    from finetune.train import ir_evaluator
    from tests.finetune.test_train import ir_data

    split = ir_data().val
    model = embedder._model
    choice = tune(model, split, candidate_k=50, rrf_k=60, split_info={"data": "toy"})
    assert set(choice.candidates) == {"rrf", "convex"} and all(len(v) == len(GRID) for v in choice.candidates.values())
    assert choice.value == max(v for per in choice.candidates.values() for v in per.values())
    weight = choice.alpha if choice.method == "convex" else choice.dense_weight
    assert choice.candidates[choice.method][f"{weight:g}"] == choice.value
    # alpha = 1 is the dense ranking alone: the same NDCG@10 as sentence-transformers' evaluator on that split
    assert choice.candidates["convex"]["1"] == pytest.approx(ir_evaluator(split, "val")(model)["val_cosine_ndcg@10"], abs=1e-6)
    assert choice.split == {"queries": len(split.queries), "corpus": len(split.corpus), "data": "toy"}
    saved = tune_saved(linked_copy(Path(resolve_model(DEFAULT_EMBEDDER)), tmp_path / "m"), split, 50, 60)
    assert read_choice(tmp_path / "m") == saved and saved.candidates == choice.candidates


def test_rerank_orders_the_first_stage_by_the_cross_encoder_score(factory, ce_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    query = "data engineer python pipelines"
    reranked = factory.build(f"bm25+rerank:{ce_dir}")
    assert isinstance(reranked, RerankRetriever)
    first = ids(factory.build("bm25", top_k=30).retrieve(query))
    got = factory.collection().get(where={CHUNK_INDEX: 0}, include=["documents", "metadatas"])
    passages = {m[LISTING_ID]: f"{m[HEADER]}\n\n{d}" for m, d in zip(got["metadatas"], got["documents"])}
    scores = CrossEncoder(str(ce_dir)).predict([(query, passages[lid]) for lid in first])
    expected = [first[i] for i in np.argsort(-scores, kind="stable")[:3]]
    hits = reranked.retrieve(query)
    assert ids(hits) == expected and [h.score for h in hits] == pytest.approx(sorted(scores, reverse=True)[:3], abs=1e-5)


def test_rerank_moves_a_lower_listing_up_and_keeps_the_rest_in_order(factory) -> None:
    query = "data engineer"
    first = ids(factory.build("dense", top_k=6).retrieve(query))
    favourite = first[1]
    title = next(row["title"] for row in CORPUS if row["id"] == favourite)
    passages = first_chunks(factory.collection())
    assert passages([favourite])[favourite].startswith(f"{title} | ")  # header first, then the first chunk

    def scorer(question: str, texts: list[str]) -> list[float]:
        return [1.0 if t.startswith(f"{title} | ") else 0.0 for t in texts]

    hits = RerankRetriever(factory.build("dense", top_k=6), scorer, passages, top_k=4, depth=2).retrieve(query)
    assert ids(hits) == [favourite, first[0], first[2], first[3]]  # the top 2 re-scored, then the first stage's order


def test_rerank_composes_with_understanding_and_filters(factory, ce_dir: Path) -> None:
    from rag_app.filters import ListingFilters

    understood = factory.build(f"hybrid+rerank:{ce_dir}+understand")
    assert isinstance(understood, ConstrainedRetriever) and isinstance(understood.inner, RerankRetriever)
    remote = factory.build(f"dense+rerank:{ce_dir}", ListingFilters(workplace=["Remote"])).retrieve("data engineer python")
    assert set(ids(remote)) <= {"de-1", "evil-1"}


def test_a_sentence_embedding_model_or_an_unknown_name_is_refused_as_reranker(factory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a cross-encoder"):
        CrossEncoderScorer.load(DEFAULT_EMBEDDER)
    with pytest.raises(ConfigError, match="cannot load cross-encoder .*jobrag train-reranker"):
        factory.build(f"dense+rerank:{tmp_path / 'no-such-ce'}")
