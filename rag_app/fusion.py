"""Fusing a dense and a BM25 listing ranking into one, and the `fusion.json` that `jobrag finetune` writes next to a model.

Two methods (`retrieval.fusion`):
- `rrf`: weighted reciprocal-rank fusion, sum of w / (k + rank) over the lists a listing is in.
- `convex`: per query, each list's scores are min-max normalised over its own candidates (best 1, worst 0), then
  alpha * dense + (1 - alpha) * bm25; a listing missing from a list gets that list's minimum (0).
  The range is set by each list's top `depth` candidates (`retrieval.fusion_depth`, the depth it was tuned at); deeper
  candidates score below 0. So the head fuses the same in chat (50 candidates) and in a 500-deep `compare`.

Min-max rather than z-score: a list is a short head of candidates (candidate_k listings, BM25 often fewer), where a
mean and deviation are unstable and BM25's heavy tail makes one outlier set the scale; min-max maps both lists onto [0, 1]
with the best candidate at 1, so alpha reads as the share of the decision each retriever gets, and "missing from a list"
is simply that list's floor. (Bruch et al., "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023: a convex
combination tuned on a few labelled queries beats RRF, and the choice of normalisation matters little.)

Why not llama-index's `QueryFusionRetriever` (its `relative_score` mode is this same min-max convex combination,
`dist_based_score` a mean ± 3 sd variant): it merges results by node content hash, and our two lists carry different
nodes for one listing (dense: its best chunk; BM25: the whole listing), so every listing would count twice; it rewrites
the scores of the nodes it is given in place; it resolves `Settings.llm` when built (an OpenAI default that fails
without a key, even with num_queries=1); and its fusion is a private method over NodeWithScore lists, where the tuner in
`finetune.fusion` needs a pure function of listing-id scores. So the formulas are written here once, and both the
hybrid retriever and the tuner call `Fusion.rank`: what is tuned is what runs.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rag_app.settings import FusionMode

if TYPE_CHECKING:
    from rag_app.settings import RetrievalSettings

logger = logging.getLogger(__name__)
FUSION_FILE = "fusion.json"
Ranking = list[tuple[str, float]]  # (listing id, retriever score), best first


def dense_score(cosine: float) -> float:
    """The score the dense retriever reports for a chunk at this cosine: llama-index's ChromaVectorStore turns Chroma's
    cosine distance (1 - cosine) into exp(-distance). The tuner scores with it so min-max sees the same numbers."""
    return math.exp(cosine - 1.0)


def minmax(ranking: Ranking, head: int | None = None) -> dict[str, float]:
    """Scores mapped so that the best of the list's first `head` (default all) is 1 and their worst 0 (candidates
    further down fall below 0); a range of one score (or all equal) maps it to 1, anything below it to 0."""
    top = ranking[:head] if head else ranking
    if not top:
        return {}
    lo, hi = min(s for _, s in top), max(s for _, s in top)
    return {lid: (s - lo) / (hi - lo) if hi > lo else float(s >= lo) for lid, s in ranking}


def convex(dense: Ranking, bm25: Ranking, alpha: float, head: int | None = None) -> dict[str, float]:
    """alpha * minmax(dense) + (1 - alpha) * minmax(bm25); a listing missing from a list gets that list's minimum
    (0 when the list is no deeper than `head`)."""
    d, b = minmax(dense, head), minmax(bm25, head)
    d_floor, b_floor = min(d.values(), default=0.0), min(b.values(), default=0.0)
    return {lid: alpha * d.get(lid, d_floor) + (1 - alpha) * b.get(lid, b_floor) for lid in {**d, **b}}


def rrf(rankings: list[tuple[Ranking, float]], k: int) -> dict[str, float]:
    """Sum over the (ranking, weight) pairs of weight / (k + rank), rank from 1."""
    fused: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, (lid, _) in enumerate(ranking, start=1):
            fused[lid] = fused.get(lid, 0.0) + weight / (k + rank)
    return fused


@dataclass(frozen=True)
class Fusion:
    """One fusion method with its weights, and where they came from (`settings`, `default` or a fusion.json path)."""

    method: FusionMode = "rrf"
    alpha: float = 0.5
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    rrf_k: int = 60
    source: str = "settings"
    depth: int | None = None  # convex: candidates per list that set its min-max range (None: all)

    @classmethod
    def from_settings(cls, rs: RetrievalSettings, source: str = "settings") -> Fusion:
        return cls(rs.fusion or "rrf", rs.fusion_alpha, rs.dense_weight, rs.bm25_weight, rs.rrf_k, source, rs.fusion_depth)

    def fuse(self, dense: Ranking, bm25: Ranking) -> dict[str, float]:
        """Fused score per listing, dense listings first in insertion order (ties keep the dense order)."""
        if self.method == "convex":
            return convex(dense, bm25, self.alpha, self.depth)
        return rrf([(dense, self.dense_weight), (bm25, self.bm25_weight)], self.rrf_k)

    def rank(self, dense: Ranking, bm25: Ranking, top_k: int) -> Ranking:
        fused = self.fuse(dense, bm25)
        return [(lid, fused[lid]) for lid in sorted(fused, key=lambda lid: fused[lid], reverse=True)[:top_k]]

    def label(self) -> str:
        if self.method == "convex":
            return f"convex(alpha={self.alpha:g})"
        return f"rrf(dense={self.dense_weight:g}, bm25={self.bm25_weight:g}, k={self.rrf_k})"


class FusionChoice(BaseModel):
    """`fusion.json`: the fusion recommended for one model, tuned on the val split of the data it was trained on."""

    method: FusionMode
    alpha: float = Field(description="convex: weight of the dense score.")
    dense_weight: float = Field(description="rrf: weight of the dense ranking.")
    bm25_weight: float = Field(description="rrf: weight of the BM25 ranking.")
    rrf_k: int
    metric: str = Field(description="The val metric maximised, e.g. ndcg@10.")
    value: float = Field(description="Its value for the recommended method and weight.")
    candidates: dict[str, dict[str, float]] = Field(description="method -> candidate weight (convex: alpha; rrf: dense weight, "
                                                                "BM25 weight = 1 - it) -> val metric.")
    candidate_k: int = Field(description="Listings per retriever the lists were cut at (and min-max normalised over): the "
                                         "convex range depth the model's hybrid retrievers use.")
    split: dict[str, Any] = Field(default_factory=dict, description="The val split it came from: data name, dir, file hash, sizes.")
    seconds: float = 0.0

    def fusion(self, source: str = "") -> Fusion:
        return Fusion(self.method, self.alpha, self.dense_weight, self.bm25_weight, self.rrf_k, source or "fusion.json", self.candidate_k)

    def write(self, model_dir: Path) -> Path:
        path = Path(model_dir) / FUSION_FILE
        path.write_text(self.model_dump_json(indent=2))
        return path


def read_choice(model_dir: str | Path) -> FusionChoice | None:
    """The fusion.json in `model_dir`, or None (no file, or not a directory)."""
    path = Path(model_dir) / FUSION_FILE
    if not path.is_file():
        return None
    try:
        return FusionChoice.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, OSError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return None


def fusion_for(rs: RetrievalSettings, model: str) -> Fusion:
    """The fusion a hybrid retriever over `model` uses: the settings' when `retrieval.fusion` is set, else the model's
    fusion.json when it has one, else RRF with the settings' weights."""
    from rag_app.model_paths import resolve_model

    if rs.fusion is not None:
        return Fusion.from_settings(rs)
    path = Path(resolve_model(model))
    choice = read_choice(path) if path.is_dir() else None
    if choice is None:
        return Fusion.from_settings(rs, source="default")
    fusion = choice.fusion(str(path / FUSION_FILE))
    logger.info("hybrid over %s: %s from %s", model, fusion.label(), fusion.source)
    return fusion


def with_weight(fusion: Fusion, weight: float) -> Fusion:
    """The same method at another candidate weight (convex: alpha; rrf: dense weight w, BM25 weight 1 - w)."""
    if fusion.method == "convex":
        return replace(fusion, alpha=weight)
    return replace(fusion, dense_weight=weight, bm25_weight=1.0 - weight)
