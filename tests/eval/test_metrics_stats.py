from __future__ import annotations

import math

import numpy as np
import pytest

from eval.metrics import average_precision_at, ndcg_at, query_metrics, rank_ids
from eval.stats import bootstrap_ci, compare, paired_bootstrap, sign_flip_p, wins_ties_losses


def test_hand_made_ranking() -> None:
    grades = {"a": 2, "b": 1, "c": 0, "d": 1}
    m = query_metrics(["x", "b", "c", "a", "y"], grades, judged={"a", "b", "c", "d"})
    assert m["first_rel_rank"] == 2 and m["hit@1"] == 0 and m["hit@3"] == 1 and m["rr@10"] == 0.5
    dcg = 1 / math.log2(3) + 2 / math.log2(5)
    idcg = 2 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert m["ndcg@10"] == pytest.approx(dcg / idcg)
    assert m["recall@10"] == pytest.approx(2 / 3) and m["map@100"] == pytest.approx((1 / 2 + 2 / 4) / 3)
    assert m["judged@10"] == pytest.approx(3 / 5)
    # condensed list: unjudged x, y dropped -> b, c, a
    assert m["ndcg@10_condensed"] == pytest.approx((1 / math.log2(2) + 2 / math.log2(4)) / idcg)
    assert m["ndcg@10_condensed"] > m["ndcg@10"]
    assert "ndcg@10_condensed" not in query_metrics(["a"], grades)  # no pool, no condensed figure


def test_graded_ndcg_prefers_the_better_grade_first() -> None:
    grades = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b"], grades) == pytest.approx(1.0)
    assert ndcg_at(["b", "a"], grades) < 1.0
    assert ndcg_at(["z"], grades) == 0.0 and ndcg_at(["a"], {}) == 0.0


def test_no_relevant_found() -> None:
    m = query_metrics(["x", "y"], {"a": 1})
    assert m["first_rel_rank"] is None and m["rr@10"] == 0 and m["hit@10"] == 0 and m["map@100"] == 0


def test_ties_are_broken_by_id_deterministically() -> None:
    assert rank_ids({"b": 0.5, "a": 0.5, "c": 0.9}) == ["c", "a", "b"]
    assert average_precision_at(rank_ids({"b": 1.0, "a": 1.0}), {"b"}) == 0.5  # a wins the tie, b is second


def test_agrees_with_sentence_transformers_evaluator(embedder) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    corpus = {f"d{i}": t for i, t in enumerate(["icu nurse nights", "sushi chef", "data engineer python", "truck driver cdl",
                                                "python developer backend", "pastry chef", "night nurse hospital", "soccer referee"])}
    queries = {"q1": "nurse job at night", "q2": "python data jobs", "q3": "chef position", "q4": "referee"}
    relevant = {"q1": {"d0", "d6"}, "q2": {"d2", "d4"}, "q3": {"d1"}, "q4": {"d7", "d3"}}
    ev = InformationRetrievalEvaluator(queries, corpus, relevant, mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 3, 10],
                                       precision_recall_at_k=[10], map_at_k=[100], show_progress_bar=False, name="x")
    st = ev(embedder._model)
    q = embedder._model.encode(list(queries.values()), normalize_embeddings=True)
    d = embedder._model.encode(list(corpus.values()), normalize_embeddings=True)
    sims = q @ d.T
    ours = []
    for qi, qid in enumerate(queries):
        ranking = rank_ids({doc: float(sims[qi, di]) for di, doc in enumerate(corpus)})
        ours.append(query_metrics(ranking, {doc: 1 for doc in relevant[qid]}))
    for key, st_key in (("ndcg@10", "x_cosine_ndcg@10"), ("rr@10", "x_cosine_mrr@10"), ("recall@10", "x_cosine_recall@10"),
                        ("hit@1", "x_cosine_accuracy@1"), ("map@100", "x_cosine_map@100")):
        assert np.mean([m[key] for m in ours]) == pytest.approx(st[st_key], abs=1e-6), key


def test_bootstrap_ci_covers_a_known_effect() -> None:
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        a = rng.normal(0.5, 0.2, size=80)
        b = a + 0.05 + rng.normal(0, 0.1, size=80)  # true mean delta 0.05
        _, lo, hi = paired_bootstrap(a, b, resamples=2000, seed=trial)
        covered += lo <= 0.05 <= hi
    assert 0.90 <= covered / 200 <= 0.99  # ~95 % nominal coverage


def test_one_sample_bootstrap_ci_covers_the_mean_and_pairs_are_the_ci_of_the_differences() -> None:
    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(200):
        x = rng.beta(2, 5, size=80)  # skewed like per-query NDCG; true mean 2/7
        _, lo, hi = bootstrap_ci(x, resamples=2000, seed=trial)
        covered += lo <= 2 / 7 <= hi
    assert 0.90 <= covered / 200 <= 0.99
    a, b = rng.random(30), rng.random(30)
    assert paired_bootstrap(a, b, 500, 4) == bootstrap_ci(b - a, 500, 4)
    assert bootstrap_ci([0.3]) == (0.3, 0.3, 0.3) and all(math.isnan(v) for v in bootstrap_ci([]))


def test_sign_flip_p_is_exact_when_every_flip_fits() -> None:
    # 2**3 = 8 sign patterns of (1, 2, 3): |mean| >= 2 only for all + and all -
    assert sign_flip_p([0, 0, 0], [1, 2, 3], permutations=1000) == pytest.approx(2 / 8)
    assert sign_flip_p([0.0], [0.5]) == 1.0


def test_p_values_separate_real_and_null_effects() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(0.5, 0.2, size=80)
    assert sign_flip_p(a, a + 0.1 + rng.normal(0, 0.05, 80)) < 0.001
    nulls = [sign_flip_p(a, a + rng.normal(0, 0.1, 80), permutations=2000, seed=s) for s in range(100)]
    assert 0.02 <= np.mean(np.array(nulls) < 0.05) <= 0.12  # about 5 % false positives
    assert sign_flip_p(a, a) == 1.0


def test_compare_record() -> None:
    out = compare([0.1, 0.5, 0.5, 0.9], [0.2, 0.5, 0.4, 1.0], resamples=500, permutations=500)
    assert wins_ties_losses([0.1, 0.5, 0.5, 0.9], [0.2, 0.5, 0.4, 1.0]) == (2, 1, 1)
    assert out["wins"] == 2 and out["ties"] == 1 and out["losses"] == 1 and out["delta"] == pytest.approx(0.025)
    assert out["ci95"][0] <= out["delta"] <= out["ci95"][1] and 0 < out["p_value"] <= 1


def test_extra_judgments_extend_the_pool_without_overriding_it(tmp_path) -> None:
    from eval.runs import merge_judgments
    from rag_app.errors import ConfigError
    from rag_app.records import IRSplit

    split = IRSplit(queries={"q1": "sushi chef", "q2": "welder"}, corpus={d: d for d in "abcdef"}, relevant_docs={"q1": ["a"], "q2": ["d"]},
                    graded={"q1": {"a": 2}, "q2": {"d": 1}})
    judged = {"q1": {"a", "b"}, "q2": {"d"}}
    extra = tmp_path / "more.tsv"
    extra.write_text("query-id\tcorpus-id\tscore\treason\nq1\tc\t1\tsame job, other state\nq1\tb\t2\tregraded\nq2\te\t0\tother job\nq9\ta\t2\t\n")
    merged, pool, notes = merge_judgments(split, judged, [extra])
    assert merged.graded["q1"] == {"a": 2, "c": 1} and merged.relevant_docs["q1"] == ["a", "c"]  # b keeps its original 0
    assert pool["q1"] == {"a", "b", "c"} and pool["q2"] == {"d", "e"} and merged.graded["q2"] == {"d": 1}
    assert "2 extra judgments" in notes[0] and "1 already judged" in notes[0] and "1 for queries not in this set" in notes[0]
    ranking = ["e", "c", "d"]
    before, after = query_metrics(ranking, split.graded["q1"], judged["q1"]), query_metrics(ranking, merged.graded["q1"], pool["q1"])
    assert after["judged@10"] > before["judged@10"] and after["ndcg@10"] > before["ndcg@10"]
    bad = tmp_path / "bad.tsv"
    bad.write_text("q1\tc\tgood\n")
    with pytest.raises(ConfigError, match=r"bad.tsv:1: expected 'query-id<TAB>corpus-id<TAB>score'"):
        merge_judgments(split, judged, [bad])
    with pytest.raises(ConfigError, match="no such file"):
        merge_judgments(split, judged, [tmp_path / "missing.tsv"])
