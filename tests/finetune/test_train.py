"""Training wiring with the real packaged MiniLM on tiny data (a few steps each)."""

from __future__ import annotations

import json

import pytest

from finetune import card
from finetune.negatives import mine, repost_key
from finetune.train import build_loss, fit
from rag_app.errors import ConfigError
from rag_app.records import IRSplit, ScoredPairs, TrainingData
from rag_app.settings import FinetuneSettings

ROLES = ["ICU nurse", "sushi chef", "data engineer", "structural engineer", "tax accountant", "truck driver", "soccer referee",
         "math teacher", "electrician", "ux designer", "pharmacist", "hr generalist", "line cook", "welder", "plumber",
         "barista", "paralegal", "dental hygienist", "forklift operator", "copywriter"]
CITIES = ["Austin", "Boston", "Denver", "Chicago"]


def ir_data(n_per_role: int = 4) -> TrainingData:
    corpus, queries, rel = {}, {}, {}
    for i, role in enumerate(ROLES):
        for j in range(n_per_role):
            doc = f"d{i}-{j}"
            corpus[doc] = f"{role.title()} | Employer {i}-{j} | {CITIES[j]}, TX\n\nWe hire a {role} in {CITIES[j]} for shift {j}."
            queries[f"q{i}-{j}"] = f"{role} job {CITIES[j]}"
            rel[f"q{i}-{j}"] = [doc]
    train_ids = [q for q in queries if not q.endswith("-2")]
    val_ids = [q for q in queries if q.endswith("-2")]

    def split(ids):
        return IRSplit(queries={q: queries[q] for q in ids}, corpus=corpus, relevant_docs={q: rel[q] for q in ids})

    return TrainingData(kind="ir", name="toy", train=split(train_ids), val=split(val_ids), groups={d: d.split("-")[0] for d in corpus})


def sts_data() -> TrainingData:
    s1 = [f"a {r} works today" for r in ROLES] * 3
    s2 = [f"the {r} is working" if k % 2 else f"a cat sleeps {k}" for k, r in enumerate(ROLES * 3)]
    scores = [0.9 if k % 2 else 0.1 for k in range(len(s1))]
    pairs = ScoredPairs(sentence1=s1, sentence2=s2, score=scores)
    return TrainingData(kind="scored", name="toy-sts", train=pairs, val=ScoredPairs(sentence1=s1[:10], sentence2=s2[:10], score=scores[:10]))


def fs(**kw) -> FinetuneSettings:
    return FinetuneSettings(**{"batch_size": 8, "max_seq_length": 32, "learning_rate": 1e-4, "warmup_ratio": 0.0, **kw})  # no warmup: step 1 must move weights


def test_negatives_skip_the_positives_reposts(embedder) -> None:
    from datasets import Dataset

    pos = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter."
    repost = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter in Richmond."
    other = "Sushi Chef | Umi House | Seattle, WA\n\nRoll maki for the dinner rush."
    far = ["Truck Driver | Red River | Dallas, TX\n\nHaul freight.", "Nurse | Bayou | Houston, TX\n\nCare for patients."]
    assert repost_key(pos) == repost_key(repost) != repost_key(other)
    model = embedder._model
    mined, stats = mine(Dataset.from_dict({"anchor": ["sushi chef nigiri richmond"], "positive": [pos]}), model,
                        [pos, repost, other, *far], relative_margin=None, candidates=3)  # no margin: only the repost rule filters
    assert list(mined["negative"]) == [other] and stats["repost_skipped"] == 1  # the closer repost was skipped
    mined, stats = mine(Dataset.from_dict({"anchor": ["sushi chef nigiri richmond"], "positive": [pos]}), model,
                        [pos, repost, other, *far], relative_margin=None, candidates=3, exclude_same_role=True)
    assert mined["negative"][0] in far and stats["same_role_skipped"] == 1  # another employer's sushi chef is relevant, not negative


def test_role_key_and_the_sampler_keep_one_occupation_and_one_company_per_batch() -> None:
    from datasets import Dataset

    from finetune.negatives import role_key
    from finetune.sampler import EntityNoDuplicatesBatchSampler

    assert role_key("Senior ICU Registered Nurse - Nights | Bayou | Houston, TX\n\ntext") == "icu registered nurse"
    assert role_key("Structural Engineer II | A | B") == role_key("Sr. Structural Engineer (Bridges) | C | D") == "structural engineer"
    data = ir_data()
    rows = [(data.train.queries[q], data.train.corpus[d], d) for q, docs in data.train.relevant_docs.items() for d in docs]
    dataset = Dataset.from_dict({"anchor": [a for a, _, _ in rows], "positive": [p for _, p, _ in rows]})
    entities = [(data.groups[d], f"role:{role_key(p)}") for _, p, d in rows]
    sampler = EntityNoDuplicatesBatchSampler(dataset, batch_size=8, drop_last=False, entities=entities, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(rows)))  # every row once
    for batch in batches:
        roles = [entities[i][1] for i in batch]
        assert len(set(roles)) == len(roles)


def test_negatives_keep_every_pair_in_order(embedder) -> None:
    """No pair is dropped: pairs whose candidates all sit inside the margin (or are reposts) get a fallback negative."""
    from datasets import Dataset

    data = ir_data()
    rows = [(data.train.queries[q], data.train.corpus[d]) for q, docs in data.train.relevant_docs.items() for d in docs]
    anchors, positives = [a for a, _ in rows], [p for _, p in rows]
    corpus = list(data.train.corpus.values())
    model = embedder._model
    for margin in (0.05, 0.9):  # 0.9 leaves (almost) no candidate outside the margin: the old n-tuple path dropped those pairs
        mined, stats = mine(Dataset.from_dict({"anchor": anchors, "positive": positives}), model, corpus, relative_margin=margin, candidates=4)
        assert len(mined) == len(rows) == stats["pairs"] == stats["with_negative"] + stats["fallback_negative"]
        assert list(mined["anchor"]) == anchors and list(mined["positive"]) == positives
        assert all(n != p and repost_key(n) != repost_key(p) for p, n in zip(mined["positive"], mined["negative"]))
    assert stats["fallback_negative"] > 0  # the wide margin really exercised the fallback

    pos = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter."
    repost = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter in Richmond."
    far = ["Truck Driver | Red River | Dallas, TX\n\nHaul freight.", "Nurse | Bayou | Houston, TX\n\nCare for patients."]
    mined, stats = mine(Dataset.from_dict({"anchor": ["sushi chef nigiri richmond"], "positive": [pos]}), model, [pos, repost, *far],
                        relative_margin=0.99, candidates=3)
    assert len(mined) == 1 and mined["negative"][0] in far and stats["fallback_negative"] == 1  # never the repost


@pytest.mark.slow
def test_tiny_run_changes_weights_and_writes_card_and_manifest(tmp_path) -> None:
    data = ir_data()
    run = fit(data, "sentence-transformers/all-MiniLM-L6-v2", tmp_path / "m", fs(seed=1), hard_negatives=True, max_steps=2)
    manifest = card.write(tmp_path / "m", run, data.name, None, {"generator": "toy"}, fs(seed=1).model_dump(), 1.0)
    assert run.weights != run.base_weights and run.steps == 2 and run.hard_negatives["with_negative"] > 0
    assert "val_cosine_ndcg@10" in run.before and "val_cosine_ndcg@10" in run.after
    saved = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert saved["seed"] == 1 and saved["loss"] == "mnrl" and saved["metrics_after"] == manifest["metrics_after"]
    text = (tmp_path / "m" / "README.md").read_text()
    assert "sentence-transformers" in text and "## jobrag: before and after fine-tuning" in text and "val_cosine_ndcg@10" in text

    from sentence_transformers import SentenceTransformer

    from rag_app.model_paths import weights_hash

    assert weights_hash(SentenceTransformer(str(tmp_path / "m"))) == run.weights  # the saved dir is the trained model


@pytest.mark.slow
def test_eval_steps_evaluates_and_checkpoints_mid_epoch(tmp_path) -> None:
    run = fit(sts_data(), "sentence-transformers/all-MiniLM-L6-v2", None, fs(loss="cosent", eval_steps=2, batch_size=4), max_steps=5)
    evaluated = [h["step"] for h in run.history if "eval_val_spearman_cosine" in h]
    assert run.steps == 5 and evaluated[:2] == [2, 4]  # every 2 steps, not once per epoch


@pytest.mark.parametrize("loss, data, kw", [
    ("cached-mnrl", ir_data, {}),
    ("triplet", ir_data, {}),
    ("mnrl", ir_data, {"matryoshka": True}),
    ("mnrl", ir_data, {"negatives": "both"}),
    ("triplet", ir_data, {"negatives": "bm25"}),
    ("cosent", sts_data, {}),
    ("contrastive", sts_data, {}),
])
@pytest.mark.slow
def test_every_loss_trains_a_step(tmp_path, loss: str, data, kw: dict) -> None:
    run = fit(data(), "sentence-transformers/all-MiniLM-L6-v2", tmp_path / loss, fs(loss=loss, **kw), max_steps=1)
    assert run.steps == 1 and run.weights != run.base_weights
    assert run.hard_negatives.get("pairs", run.train_rows) == run.train_rows  # mined: one row per pair, in every mode
    key = "val_cosine_ndcg@10" if data is ir_data else "val_spearman_cosine"
    assert key in run.after


def test_loss_objects_are_the_library_ones(embedder) -> None:
    from sentence_transformers.sentence_transformer import losses

    model = embedder._model
    assert isinstance(build_loss("mnrl", model, False), losses.MultipleNegativesRankingLoss)
    assert isinstance(build_loss("cached-mnrl", model, False), losses.CachedMultipleNegativesRankingLoss)
    wrapped = build_loss("mnrl", model, True)
    assert isinstance(wrapped, losses.MatryoshkaLoss) and list(wrapped.matryoshka_dims) == [384, 256, 128, 64]


def test_too_few_pairs_empty_split_and_wrong_loss_are_clear(tmp_path) -> None:
    small = ir_data(1)
    with pytest.raises(ConfigError, match="only 20 training pairs.*at least 50"):
        fit(small, "sentence-transformers/all-MiniLM-L6-v2", tmp_path, fs())
    data = ir_data()
    empty = data.model_copy(update={"val": IRSplit(queries={}, corpus={}, relevant_docs={})})
    with pytest.raises(ConfigError, match="val split .* is empty"):
        fit(empty, "sentence-transformers/all-MiniLM-L6-v2", tmp_path, fs())
    with pytest.raises(ConfigError, match="use --loss cosent"):
        fit(sts_data(), "sentence-transformers/all-MiniLM-L6-v2", tmp_path, fs(loss="mnrl"))
    with pytest.raises(ConfigError, match="triplet takes one negative per pair"):
        fit(data, "sentence-transformers/all-MiniLM-L6-v2", tmp_path, fs(loss="triplet", negatives="both"))
