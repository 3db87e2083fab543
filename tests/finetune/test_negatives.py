"""Lexical (BM25) hard negatives, dense + BM25 together, and judged negatives: the same exclusions and no pair dropped."""

from __future__ import annotations

import pytest

from finetune.negatives import mine, repost_key, role_key
from tests.finetune.test_train import ir_data

POS = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter."
REPOST = "Sushi Chef | Kaiyo | Richmond, VA\n\nPrepare nigiri and sashimi at the omakase counter in Richmond."
SAME_ROLE = "Sushi Chef | Umi House | Seattle, WA\n\nRoll maki and nigiri for the dinner rush."
LEXICAL = "Line Cook | Harbor Grill | Richmond, VA\n\nPrep seafood for the grill; sashimi station a plus."
FAR = ["Truck Driver | Red River | Dallas, TX\n\nHaul freight.", "Nurse | Bayou | Houston, TX\n\nCare for patients."]
QUERY = "sushi chef nigiri richmond"


def words(text: str) -> set[str]:
    """Stemmed, stopword-free tokens, as the BM25 miner sees them."""
    import bm25s
    import Stemmer

    return set(bm25s.tokenize([text], stopwords="en", stemmer=Stemmer.Stemmer("english"), return_ids=False, show_progress=False)[0])


def one(query: str = QUERY, positive: str = POS):
    from datasets import Dataset

    return Dataset.from_dict({"anchor": [query], "positive": [positive]})


def test_bm25_negatives_share_the_querys_words_but_not_its_job() -> None:
    corpus = [POS, REPOST, SAME_ROLE, LEXICAL, *FAR]
    mined, stats = mine(one(), None, corpus, source="bm25")  # no model: BM25 alone
    assert mined["negative"][0] == SAME_ROLE and stats["repost_skipped"] >= 2  # the positive itself and its repost
    assert words(QUERY) & words(mined["negative"][0])
    mined, stats = mine(one(), None, corpus, source="bm25", exclude_same_role=True)
    assert mined["negative"][0] == LEXICAL and stats["same_role_skipped"] == 1 and stats["with_negative"] == 1
    assert mined.column_names == ["anchor", "positive", "negative"]


def test_bm25_negatives_keep_every_pair_and_fall_back_when_no_listing_shares_a_word() -> None:
    data = ir_data()
    rows = [(data.train.queries[q], data.train.corpus[d]) for q, docs in data.train.relevant_docs.items() for d in docs]
    anchors, positives = [a for a, _ in rows], [p for _, p in rows]
    mined, stats = mine(one().from_dict({"anchor": anchors, "positive": positives}), None, list(data.train.corpus.values()),
                        source="bm25", exclude_same_role=True)
    assert list(mined["anchor"]) == anchors and list(mined["positive"]) == positives
    assert stats["pairs"] == len(rows) == stats["with_negative"] and stats["fallback_negative"] == 0
    for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"]):
        assert words(a) & words(n) and role_key(n) != role_key(p) and repost_key(n) != repost_key(p)

    mined, stats = mine(one("zzz qqq"), None, [POS, *FAR], source="bm25")  # no shared word: a random other listing
    assert mined["negative"][0] in FAR and stats["fallback_negative"] == 1 and stats["with_negative"] == 0


def test_judged_negatives_come_first_unless_an_exclusion_applies() -> None:
    corpus = [POS, REPOST, SAME_ROLE, LEXICAL, *FAR]
    mined, stats = mine(one(), None, corpus, source="bm25", given=[[FAR[1]]])
    assert mined["negative"][0] == FAR[1] and stats["given_negative"] == 1 and stats["with_negative"] == 0
    mined, stats = mine(one(), None, corpus, source="bm25", given=[[REPOST, SAME_ROLE]], exclude_same_role=True)
    assert mined["negative"][0] == LEXICAL and stats["given_negative"] == 0 and stats["same_role_skipped"] >= 1


def test_both_gives_one_dense_and_one_distinct_bm25_negative_per_pair(embedder) -> None:
    data = ir_data()
    rows = [(data.train.queries[q], data.train.corpus[d]) for q, docs in data.train.relevant_docs.items() for d in docs]
    mined, stats = mine(one().from_dict({"anchor": [a for a, _ in rows], "positive": [p for _, p in rows]}), embedder._model,
                        list(data.train.corpus.values()), source="both", exclude_same_role=True, candidates=8)
    assert mined.column_names == ["anchor", "positive", "negative_1", "negative_2"] and len(mined) == len(rows)
    assert stats["pairs"] == len(rows) == stats["dense_with_negative"] + stats["dense_fallback_negative"]
    assert stats["pairs"] == stats["bm25_with_negative"] and stats["bm25_fallback_negative"] == 0
    for a, p, n1, n2 in zip(mined["anchor"], mined["positive"], mined["negative_1"], mined["negative_2"]):
        assert n1 != n2 and role_key(p) not in (role_key(n1), role_key(n2)) and words(a) & words(n2)
    with pytest.raises(ValueError, match="valid: dense, bm25, both"):
        mine(one(), None, [POS, *FAR], source="lexical")
