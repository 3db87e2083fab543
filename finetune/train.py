"""Fine-tune a sentence-transformers model: SentenceTransformerTrainer + TrainingArguments + a loss + an evaluator.

Losses (`finetune.loss`): `mnrl` (default; in-batch negatives with mined hard negatives, a no-duplicates sampler that
also keeps listings of one entity out of the same batch), `cached-mnrl` (GradCache: large effective batches on small
memory), `cosent` (scored pairs, e.g. STS-B), `contrastive` (0/1 labelled pairs), `triplet`; `finetune.matryoshka` wraps
any of them in MatryoshkaLoss. IR data is evaluated on its val split each epoch (InformationRetrievalEvaluator) and the
best checkpoint is kept; scored pairs use EmbeddingSimilarityEvaluator. Multi-GPU: launch with `torchrun`/`accelerate`,
the trainer distributes itself.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag_app.errors import ConfigError
from rag_app.records import IRSplit, ScoredPairs, TrainingData
from rag_app.settings import LOSSES

logger = logging.getLogger(__name__)
MIN_PAIRS = 50


@dataclass
class TrainingRun:
    """What one fine-tuning run did: the record the card and manifest are written from."""

    base_model: str
    base_weights: str  # weights hash before and after training
    weights: str
    loss: str
    matryoshka: bool
    hard_negatives: dict[str, int]  # mining counts (empty without mining)
    train_rows: int
    steps: int
    train_loss: float
    before: dict[str, float]  # evaluator metrics before and after training, e.g. val_cosine_ndcg@10
    after: dict[str, float]
    primary_metric: str
    max_seq_length: dict[str, int]  # train / serve
    timings: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)  # the trainer's log (losses, evaluations)
    budget: dict[str, Any] | None = None  # --time-budget: the plan and the steps actually run


def ir_evaluator(split: IRSplit, name: str, batch_size: int = 32) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    queries = {q: t for q, t in split.queries.items() if split.relevant_docs.get(q)}
    return InformationRetrievalEvaluator(queries=queries, corpus=split.corpus, relevant_docs={q: set(d) for q, d in split.relevant_docs.items() if d},
                                         name=name, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 3, 10], precision_recall_at_k=[10, 100],
                                         map_at_k=[100], batch_size=batch_size, show_progress_bar=False)


def sts_evaluator(split: ScoredPairs, name: str) -> Any:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator(split.sentence1, split.sentence2, split.score, name=name, show_progress_bar=False)


def evaluator_for(data: TrainingData, split: IRSplit | ScoredPairs, name: str) -> Any:
    return ir_evaluator(split, name) if isinstance(split, IRSplit) else sts_evaluator(split, name)


def primary_metric(data: TrainingData, name: str) -> str:
    return f"{name}_cosine_ndcg@10" if data.kind == "ir" else f"{name}_spearman_cosine"


def check(data: TrainingData, loss: str) -> None:
    if loss not in LOSSES:
        raise ConfigError(f"unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
    n = len(data.train.pairs()) if isinstance(data.train, IRSplit) else len(data.train.score)
    if n < MIN_PAIRS:
        raise ConfigError(f"only {n} training pairs in {data.name!r}; need at least {MIN_PAIRS} (generate more with `jobrag gen-pairs`)")
    for split_name in ("val",):
        split = getattr(data, split_name)
        if (isinstance(split, IRSplit) and not split.pairs()) or (isinstance(split, ScoredPairs) and not split.score):
            raise ConfigError(f"the {split_name} split of {data.name!r} is empty; regenerate the dataset or pick larger fractions")
    if data.kind == "scored" and loss not in ("cosent", "contrastive"):
        raise ConfigError(f"{data.name!r} holds scored pairs: use --loss cosent (similarity scores) or contrastive (0/1 labels)")
    if data.kind == "ir" and loss in ("cosent", "contrastive"):
        raise ConfigError(f"{data.name!r} holds (query, document) pairs: use --loss mnrl, cached-mnrl or triplet")


def build_loss(name: str, model: Any, matryoshka: bool, mini_batch_size: int = 16) -> Any:
    from sentence_transformers.sentence_transformer import losses

    builders = {
        "mnrl": lambda: losses.MultipleNegativesRankingLoss(model),
        "cached-mnrl": lambda: losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=mini_batch_size),
        "cosent": lambda: losses.CoSENTLoss(model),
        "contrastive": lambda: losses.ContrastiveLoss(model),
        "triplet": lambda: losses.TripletLoss(model),
    }
    loss = builders[name]()
    if matryoshka:
        dim = model.get_embedding_dimension()
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=[d for d in (dim, 256, 128, 64) if d <= dim])
    return loss


def train_dataset(data: TrainingData, loss: str) -> tuple[Any, list[str], list[list[str]]]:
    """HF Dataset with the columns the loss expects, the entity of each row and its judged negatives (texts).

    Judged negatives are the documents graded 0 for the row's query (label-0 rows of a pairs file); a query with several
    positives hands them out in turn, so that each of its rows tries a different one first.
    """
    from datasets import Dataset

    if isinstance(data.train, ScoredPairs):
        label = "score" if loss == "cosent" else "label"
        values = data.train.score if loss == "cosent" else [int(round(s)) for s in data.train.score]
        return Dataset.from_dict({"sentence1": data.train.sentence1, "sentence2": data.train.sentence2, label: values}), [], []
    split = data.train
    rows = [(q, text, doc, i) for q, docs in split.relevant_docs.items() for i, doc in enumerate(docs)
            if q in split.queries and (text := split.corpus.get(doc)) is not None]
    entities = [data.groups.get(doc, doc) for _, _, doc, _ in rows]
    given = []
    for q, _, _, i in rows:
        judged = [split.corpus[d] for d, grade in split.graded.get(q, {}).items() if grade <= 0 and d in split.corpus]
        given.append(judged[i % len(judged):] + judged[: i % len(judged)] if judged else [])
    dataset = Dataset.from_dict({"anchor": [split.queries[q] for q, _, _, _ in rows], "positive": [t for _, t, _, _ in rows]})
    return dataset, entities, given


def _sampler(data: TrainingData, loss_name: str, entities: list[str]) -> Any:
    from sentence_transformers.base.sampler import BatchSamplers

    if entities and loss_name in ("mnrl", "cached-mnrl"):
        from functools import partial

        from finetune.sampler import EntityNoDuplicatesBatchSampler

        return partial(EntityNoDuplicatesBatchSampler, entities=entities)  # picklable: the trainer saves its args
    return BatchSamplers.NO_DUPLICATES if data.kind == "ir" else BatchSamplers.BATCH_SAMPLER


PARKED = 10**9  # eval/save interval until a time budget's plan sets the real one


def _args(settings: Any, output_dir: str, data: TrainingData, sampler: Any, max_steps: int, evaluate: bool, budgeted: bool = False) -> Any:
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    cuda = torch.cuda.is_available()
    every = PARKED if budgeted else settings.eval_steps or (max_steps if max_steps > 0 else 0)  # 0: once per epoch
    strategy = "steps" if every else "epoch"
    schedule = dict(eval_strategy=strategy, save_strategy=strategy, load_best_model_at_end=True, greater_is_better=True,
                    metric_for_best_model=f"eval_{primary_metric(data, 'val')}", save_total_limit=2, save_only_model=budgeted)
    if every:
        schedule |= dict(eval_steps=every, save_steps=every)
    if not evaluate:
        schedule = dict(eval_strategy="no", save_strategy="no")
    return SentenceTransformerTrainingArguments(
        output_dir=output_dir, num_train_epochs=settings.epochs, max_steps=max_steps, per_device_train_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate, warmup_steps=settings.warmup_ratio,  # transformers 5: a float < 1 is a ratio
        seed=settings.seed, data_seed=settings.seed, fp16=cuda and not torch.cuda.is_bf16_supported(),
        bf16=cuda and torch.cuda.is_bf16_supported(), logging_steps=10, report_to="none", batch_sampler=sampler, **schedule)


def fit(data: TrainingData, base_model: str, out_dir: Path | None, settings: Any, hard_negatives: bool = True,
        extra_evals: dict[str, TrainingData | IRSplit] | None = None, max_steps: int = -1, evaluate: bool = True,
        time_budget_s: float | None = None, started: float | None = None, reserve_s: float = 0.0, reserve_split: IRSplit | None = None,
        pin_negatives: bool = False) -> TrainingRun:
    """Train and save to `out_dir` (model + card); returns the run record the manifest is built from.

    `time_budget_s`: size the schedule so the run, counted from `started` (default: now), ends inside it with `reserve_s`
    left for the caller's own closing work, plus the time to encode `reserve_split` once at the measured pace (the
    caller's fusion tuning; finetune/budget.py). `pin_negatives`: the user chose `settings.negatives`, so the budget
    never swaps it for a cheaper source."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData, SentenceTransformerTrainer

    from finetune.negatives import mine
    from rag_app.model_paths import resolve_model, weights_hash

    loss_name = settings.loss
    check(data, loss_name)
    if hard_negatives and loss_name == "triplet" and settings.negatives == "both":
        raise ConfigError("--loss triplet takes one negative per pair: use --negatives-from dense or bm25, or --loss mnrl")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    started = t if started is None else started
    model = SentenceTransformer(resolve_model(base_model), model_card_data=SentenceTransformerModelCardData(
        language="en", license="apache-2.0", model_name=f"jobrag fine-tune of {base_model} on {data.name}"))
    serve_length = model.max_seq_length  # evaluate and save at the model's own length; train at settings.max_seq_length
    base_hash = weights_hash(model)
    prep: dict[str, Any] = {}  # what a time budget changed before training (finetune/budget.py)
    val_split = _budgeted(data.val, settings.seed, "val", prep) if time_budget_s is not None else data.val
    evaluators = {"val": evaluator_for(data, val_split, "val")} if evaluate else {}
    for name, d in (extra_evals or {}).items() if evaluate else ():
        split = d.test or d.val if isinstance(d, TrainingData) else d
        if time_budget_s is not None and isinstance(d, TrainingData):  # the held-out split of the same data: sampled alike
            split = _budgeted(split, settings.seed, name, prep)
        evaluators[name] = evaluator_for(d, split, name)
    before: dict[str, float] = {}
    eval_s: dict[str, float] = {}  # one pass of each evaluator: what a budget reserves for evaluations
    for name, evaluator in evaluators.items():
        t_eval = time.perf_counter()
        before |= evaluator(model)
        eval_s[name] = time.perf_counter() - t_eval
    timings["eval_before_s"] = time.perf_counter() - t

    model.max_seq_length = settings.max_seq_length
    dataset, entities, given = train_dataset(data, loss_name)
    neg_stats: dict[str, int] = {}
    source = settings.negatives
    if hard_negatives and data.kind == "ir" and loss_name in ("mnrl", "cached-mnrl", "triplet"):
        if time_budget_s is not None and isinstance(val_split, IRSplit) and isinstance(data.train, IRSplit):
            from finetune.budget import choose_negatives

            source, prep["negatives"] = choose_negatives(source, time_budget_s, eval_s.get("val", 0.0), val_split, data.train,
                                                         settings.max_seq_length, serve_length, pinned=pin_negatives)
        t = time.perf_counter()
        by_text = {text: doc for doc, text in data.train.corpus.items()}
        dataset, neg_stats = mine(dataset, model, list(data.train.corpus.values()), seed=settings.seed,
                                  candidates=8 if settings.same_role_negatives else 16, exclude_same_role=not settings.same_role_negatives,
                                  source=source, given=given if any(given) else None)
        entities = [data.groups.get(by_text.get(p, ""), p) for p in dataset["positive"]]
        timings["mining_s"] = time.perf_counter() - t
    elif loss_name == "triplet":
        raise ConfigError("--loss triplet needs hard negatives (drop --no-negatives)")
    elif any(given):
        logger.warning("%d judged negatives unused: --no-negatives trains on (query, positive) pairs only", sum(map(len, given)))

    if entities and not settings.same_role_negatives:
        from finetune.negatives import role_key

        entities = [(e, f"role:{role_key(p)}") for e, p in zip(entities, dataset["positive"])]
    callbacks = []
    if time_budget_s is not None:
        from finetune.budget import Budget, BudgetCallback, encodings

        closing = sum(eval_s.values()) + 3.0 + reserve_s  # evaluate the final model again, load the best checkpoint, save
        if reserve_split is not None and isinstance(val_split, IRSplit) and eval_s.get("val"):
            prep["reserved_after_s"] = round(eval_s["val"] / max(encodings(val_split), 1.0) * encodings(reserve_split), 1)
            closing += prep["reserved_after_s"]
        callbacks.append(BudgetCallback(Budget(time_budget_s, started, eval_s.get("val", 0.0), closing), settings.warmup_ratio, evaluate))
    with tempfile.TemporaryDirectory(prefix="jobrag-ckpt-") as ckpt:
        args = _args(settings, ckpt, data, _sampler(data, loss_name, entities), max_steps, evaluate, budgeted=bool(callbacks))
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=build_loss(loss_name, model, settings.matryoshka),
                                             evaluator=evaluators.get("val"), callbacks=callbacks)
        t = time.perf_counter()
        result = trainer.train()
        timings["train_s"] = time.perf_counter() - t
        history = [h for h in trainer.state.log_history if "loss" in h or any(k.startswith("eval_val") for k in h)]
    model.max_seq_length = serve_length
    t = time.perf_counter()
    after = {k: v for e in evaluators.values() for k, v in e(model).items()}
    timings["eval_after_s"] = time.perf_counter() - t
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        model.save(str(out_dir))
    return TrainingRun(base_model=base_model, base_weights=base_hash, weights=weights_hash(model), loss=loss_name, matryoshka=settings.matryoshka,
                       hard_negatives=neg_stats, train_rows=len(dataset), steps=result.global_step, train_loss=result.training_loss,
                       before=before, after=after, primary_metric=primary_metric(data, "val"),
                       max_seq_length={"train": settings.max_seq_length, "serve": serve_length}, timings=timings, history=history,
                       budget={**callbacks[0].plan, "steps_run": result.global_step, **prep} if callbacks else None)


def _budgeted(split: Any, seed: int, name: str, prep: dict[str, Any]) -> Any:
    """A budgeted run evaluates IR splits on a sample of their listings; `prep` records the sizes."""
    from finetune.budget import eval_subset

    if not isinstance(split, IRSplit):
        return split
    sample = eval_subset(split, seed)
    if sample is not split:
        prep.setdefault("evaluated_on", {})[name] = {"listings": len(sample.corpus), "of_listings": len(split.corpus),
                                                     "queries": len(sample.queries), "of_queries": len(split.queries)}
    return sample
