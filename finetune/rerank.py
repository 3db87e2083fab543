"""Train a cross-encoder reranker on generated (query, listing) pairs: CrossEncoderTrainer + BinaryCrossEntropyLoss.

Each training pair gives two rows: (query, its listing) labelled 1, and (query, a hard negative) labelled 0, the
negative picked by `finetune.negatives.mine` with the base embedder (the positive's reposts skipped and, unless
`finetune.same_role_negatives`, listings of its own occupation: a job seeker calls those relevant too). The model starts
from `finetune.reranker_base`; a sentence-embedding checkpoint (the packaged MiniLM) becomes a cross-encoder with a fresh
one-output head (sentence-transformers converts it, offline). Evaluation: sentence-transformers'
CrossEncoderRerankingEvaluator on up to `finetune.reranker_eval_queries` val queries, re-ranking the base embedder's top
`depth` listings with the positives left where the embedder put them (missing when it missed them: the realistic
figure), before and after training; `val_base_*` is the embedder's own ranking.
"""

from __future__ import annotations

import json
import logging
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag_app.errors import ConfigError
from rag_app.records import IRSplit, TrainingData
from rag_app.rerank import PASSAGE_CHARS

logger = logging.getLogger(__name__)


@dataclass
class RerankerRun:
    """What one reranker training did: the record its manifest.json is written from."""

    base_model: str
    miner: str
    train_rows: int
    steps: int
    train_loss: float
    hard_negatives: dict[str, int]
    before: dict[str, float]  # val_ndcg@10, val_mrr@10, val_map and the first stage's val_base_*
    after: dict[str, float]
    depth: int
    timings: dict[str, float] = field(default_factory=dict)


def rerank_samples(embedder: Any, split: IRSplit, depth: int, limit: int, seed: int) -> list[dict[str, Any]]:
    """Evaluator samples: per val query (a seeded `limit` of them), its positives and the embedder's top `depth` listings."""
    import numpy as np

    qids = sorted(q for q, docs in split.relevant_docs.items() if q in split.queries and any(d in split.corpus for d in docs))
    if len(qids) > limit:
        qids = sorted(random.Random(seed).sample(qids, limit))
    doc_ids = list(split.corpus)
    texts = [split.corpus[d][:PASSAGE_CHARS] for d in doc_ids]
    q = embedder.encode([split.queries[x] for x in qids], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    d = embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    top = np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :depth]
    return [{"query": split.queries[x], "positive": [split.corpus[p][:PASSAGE_CHARS] for p in split.relevant_docs[x] if p in split.corpus],
             "documents": [texts[j] for j in row]} for x, row in zip(qids, top)]


def pairs_dataset(data: TrainingData, embedder: Any, settings: Any) -> tuple[Any, dict[str, int]]:
    """(query, document, label) rows: every training pair's positive (1) and its mined hard negative (0)."""
    from datasets import Dataset

    from finetune.negatives import mine
    from finetune.train import train_dataset

    anchors_positives, _, _ = train_dataset(data, "mnrl")
    mined, stats = mine(anchors_positives, embedder, list(data.train.corpus.values()), seed=settings.seed,
                        candidates=8 if settings.same_role_negatives else 16, exclude_same_role=not settings.same_role_negatives)
    queries = list(mined["anchor"])
    return Dataset.from_dict({"query": queries * 2, "document": [t[:PASSAGE_CHARS] for t in [*mined["positive"], *mined["negative"]]],
                              "label": [1.0] * len(queries) + [0.0] * len(queries)}), stats


def _args(settings: Any, output_dir: str, max_steps: int) -> Any:
    import torch
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    cuda = torch.cuda.is_available()
    return CrossEncoderTrainingArguments(
        output_dir=output_dir, num_train_epochs=settings.epochs, max_steps=max_steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, warmup_steps=settings.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        seed=settings.seed, data_seed=settings.seed, fp16=cuda and not torch.cuda.is_bf16_supported(), bf16=cuda and torch.cuda.is_bf16_supported(),
        logging_steps=10, report_to="none", eval_strategy="no", save_strategy="no")


def fit_reranker(data: TrainingData, out_dir: Path | None, settings: Any, depth: int = 30, max_steps: int = -1,
                 device: str | None = None) -> RerankerRun:
    """Train from `settings.reranker_base` on `data`'s train pairs; save to `out_dir` with manifest.json."""
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from sentence_transformers.cross_encoder import CrossEncoderTrainer
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    from finetune.train import check
    from rag_app.model_paths import resolve_model

    if data.kind != "ir" or not isinstance(data.val, IRSplit):
        raise ConfigError(f"{data.name!r} holds scored pairs; a reranker trains on (query, listing) pairs: use a gen-pairs or BEIR dir")
    check(data, "mnrl")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    embedder = SentenceTransformer(resolve_model(settings.base_model), device=device)  # mines negatives, ranks the val candidates
    dataset, stats = pairs_dataset(data, embedder, settings)
    evaluator = CrossEncoderRerankingEvaluator(rerank_samples(embedder, data.val, depth, settings.reranker_eval_queries, settings.seed),
                                               at_k=10, always_rerank_positives=False, name="val", write_csv=False)
    del embedder
    timings["mining_s"] = time.perf_counter() - t
    model = CrossEncoder(resolve_model(settings.reranker_base), num_labels=1, max_length=settings.max_seq_length, device=device)
    t = time.perf_counter()
    before = {k: float(v) for k, v in evaluator(model).items()}
    timings["eval_before_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="jobrag-ce-") as ckpt:
        trainer = CrossEncoderTrainer(model=model, args=_args(settings, ckpt, max_steps), train_dataset=dataset, loss=BinaryCrossEntropyLoss(model))
        t = time.perf_counter()
        result = trainer.train()
        timings["train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    after = {k: float(v) for k, v in evaluator(model).items()}
    timings["eval_after_s"] = time.perf_counter() - t
    run = RerankerRun(base_model=settings.reranker_base, miner=settings.base_model, train_rows=len(dataset), steps=result.global_step,
                      train_loss=result.training_loss, hard_negatives=stats, before=before, after=after, depth=depth, timings=timings)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(str(out_dir))
    return run


def write_manifest(out_dir: Path, run: RerankerRun, data_name: str, data_dir: Path | None, settings: dict[str, Any]) -> dict[str, Any]:
    from finetune.card import file_hashes, versions

    manifest = {"kind": "cross-encoder reranker", "model_dir": str(out_dir), **asdict(run), "loss": "BinaryCrossEntropyLoss",
                "data": {"name": data_name, "dir": str(data_dir) if data_dir else None, "file_sha256_16": file_hashes(data_dir)},
                "hyperparameters": settings, "versions": versions()}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return manifest
