"""Fusion formulas, fusion.json read/write and precedence, retriever specs with +rerank (no model loaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rag_app.errors import ConfigError
from rag_app.fusion import FUSION_FILE, Fusion, FusionChoice, convex, fusion_for, minmax, read_choice, rrf
from rag_app.retrievers import Spec, parse_spec
from rag_app.settings import RetrievalSettings

DENSE = [("a", 0.90), ("b", 0.80), ("c", 0.50)]  # dense likes a; c is its weakest
BM25 = [("c", 12.0), ("d", 9.0), ("a", 2.0)]  # BM25 likes c; a is its weakest; b is missing


def test_minmax_maps_each_list_onto_zero_one() -> None:
    assert minmax(DENSE) == pytest.approx({"a": 1.0, "b": 0.75, "c": 0.0})
    assert minmax(BM25) == pytest.approx({"c": 1.0, "d": 0.7, "a": 0.0})
    assert minmax([("x", 3.0)]) == {"x": 1.0} and minmax([]) == {}  # one candidate is that list's best


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_convex_matches_the_formula_and_missing_gets_the_list_minimum(alpha: float) -> None:
    fused = convex(DENSE, BM25, alpha)
    d, b = {"a": 1.0, "b": 0.75, "c": 0.0, "d": 0.0}, {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.7}  # b missing from BM25, d from dense: 0
    assert fused == pytest.approx({lid: alpha * d[lid] + (1 - alpha) * b[lid] for lid in "abcd"})


def test_convex_orders_a_hand_made_case_by_alpha() -> None:
    dense_led = Fusion("convex", alpha=0.8).rank(DENSE, BM25, 4)
    assert [lid for lid, _ in dense_led] == ["a", "b", "c", "d"]  # a .8, b .6, c .2, d .14
    bm25_led = Fusion("convex", alpha=0.2).rank(DENSE, BM25, 4)
    assert [lid for lid, _ in bm25_led] == ["c", "d", "a", "b"]  # c .8, d .56, a .2, b .15
    assert Fusion("convex", alpha=0.5).rank(DENSE, BM25, 2) == [("a", 0.5), ("c", 0.5)]  # a tie keeps the dense order
    # convex uses scores, RRF only ranks: a near-tie in BM25 (d 9 vs c 12) matters to convex, not to RRF's rank positions
    assert rrf([(DENSE, 1.0), (BM25, 1.0)], 60) == pytest.approx({"a": 1 / 61 + 1 / 63, "b": 1 / 62, "c": 1 / 63 + 1 / 61, "d": 1 / 62})


def test_deeper_candidates_fall_below_the_head_range_and_leave_the_head_alone() -> None:
    deep_dense, deep_bm25 = [*DENSE, ("e", 0.30)], [*BM25, ("f", 1.0)]
    assert minmax(deep_dense, head=3) == pytest.approx({"a": 1.0, "b": 0.75, "c": 0.0, "e": -0.5})
    shallow, deep = convex(DENSE, BM25, 0.6, head=3), convex(deep_dense, deep_bm25, 0.6, head=3)
    assert {k: deep[k] for k in "ac"} == pytest.approx({k: shallow[k] for k in "ac"})  # in both lists: unchanged
    assert deep["b"] == pytest.approx(0.6 * 0.75 + 0.4 * -0.1)  # missing from BM25: that deeper list's minimum, f's -0.1
    assert deep["e"] < 0 and deep["f"] < 0
    assert minmax([("x", 2.0), ("y", 2.0), ("z", 1.0)], head=2) == {"x": 1.0, "y": 1.0, "z": 0.0}  # no range: the head is 1


def test_fusion_from_settings_and_labels() -> None:
    assert Fusion.from_settings(RetrievalSettings()).method == "rrf"  # unset: today's RRF
    f = Fusion.from_settings(RetrievalSettings(fusion="convex", fusion_alpha=0.7))
    assert (f.method, f.alpha, f.label()) == ("convex", 0.7, "convex(alpha=0.7)")
    with pytest.raises(ValueError):
        RetrievalSettings(fusion="max")


def choice(method: str = "convex", alpha: float = 0.7) -> FusionChoice:
    return FusionChoice(method=method, alpha=alpha, dense_weight=0.6, bm25_weight=0.4, rrf_k=60, metric="val ndcg@10", value=0.5,
                        candidates={"convex": {"0.7": 0.5}, "rrf": {"0.6": 0.4}}, candidate_k=50, split={"data": "toy", "queries": 3})


def test_fusion_json_is_written_read_back_and_an_explicit_setting_wins(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    assert fusion_for(RetrievalSettings(), str(model_dir)).source == "default"  # no fusion.json: RRF from the settings
    path = choice().write(model_dir)
    assert path == model_dir / FUSION_FILE and read_choice(model_dir) == choice()
    used = fusion_for(RetrievalSettings(), str(model_dir))
    assert (used.method, used.alpha, used.source) == ("convex", 0.7, str(path))
    pinned = fusion_for(RetrievalSettings(fusion="rrf", dense_weight=2.0), str(model_dir))
    assert (pinned.method, pinned.dense_weight, pinned.source) == ("rrf", 2.0, "settings")  # retrieval.fusion set: settings win
    choice("rrf").write(model_dir)
    rrf_choice = fusion_for(RetrievalSettings(), str(model_dir))
    assert (rrf_choice.method, rrf_choice.dense_weight, rrf_choice.bm25_weight) == ("rrf", 0.6, 0.4)
    assert fusion_for(RetrievalSettings(), "sentence-transformers/all-MiniLM-L6-v2").source == "default"  # a hub name: no file


def test_an_unreadable_fusion_json_is_ignored(tmp_path: Path) -> None:
    (tmp_path / FUSION_FILE).write_text(json.dumps({"method": "convex"}))
    assert read_choice(tmp_path) is None and fusion_for(RetrievalSettings(), str(tmp_path)).method == "rrf"


@pytest.mark.parametrize("spec, parsed", [
    ("dense", Spec("dense")),
    ("hybrid:./models/ft+rerank", Spec("hybrid", "./models/ft", rerank=True)),
    ("hybrid:./models/ft+rerank:./models/ce+understand", Spec("hybrid", "./models/ft", True, "./models/ce", True)),
    ("bm25+rerank:cross-encoder/ms-marco-MiniLM-L6-v2", Spec("bm25", None, True, "cross-encoder/ms-marco-MiniLM-L6-v2")),
    ("dense:./a+b+understand", Spec("dense", "./a+b", understand=True)),  # a '+' inside a model path is kept
])
def test_specs_compose_rerank_and_understand(spec: str, parsed: Spec) -> None:
    assert Spec.parse(spec) == parsed
    assert parse_spec(spec) == (parsed.kind, parsed.model)


def test_a_bad_spec_lists_the_valid_forms() -> None:
    with pytest.raises(ConfigError, match=r"valid: dense\[:MODEL\], bm25\[:MODEL\], hybrid\[:MODEL\], each optionally followed by "
                                          r"\+rerank\[:CE_MODEL\] and then \+understand"):
        parse_spec("rerank:foo")
