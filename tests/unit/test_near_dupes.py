"""Near-duplicate reposts are folded when read; templated postings of other jobs are kept (no model needed)."""

from __future__ import annotations

import json

import pytest

from ingest.pipeline import read_listings
from ingest.sources import SAMPLE_PATH
from tests.conftest import write_jsonl


def first_sample() -> dict:
    return json.loads(SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[0])


def one_word_changed(row: dict, **kw) -> dict:
    text = row["description"].replace("properly", "right", 1)
    assert text != row["description"]
    return {**row, "description": text, **kw}


def test_a_repost_with_one_word_changed_is_folded_into_the_first_copy(tmp_path, settings) -> None:
    row = first_sample()
    other = json.loads(SAMPLE_PATH.read_text(encoding="utf-8").splitlines()[1])
    rows = [row, other, one_word_changed(row, id="again-1", url="https://x/2", salary="$150,000 a year")]
    read = read_listings(str(write_jsonl(tmp_path / "j.jsonl", rows)), settings)
    assert [x.id for x in read.listings] == [row["id"], other["id"]] and read.duplicates == 0
    assert read.near_duplicates == 1
    fold = read.folds[0]
    assert (fold.id, fold.row, fold.kept, fold.kept_row) == ("again-1", 3, row["id"], 1) and 0.9 <= fold.jaccard < 1


@pytest.mark.parametrize("change", [
    {"location": "Dallas, TX"},  # the same template in another city is another job
    {"company": "Harbour Cloud"},  # ... at another employer too
    {"title": "Senior Frontend Engineer"},  # ... and another role at the same employer
    {"work_type": "Part-time; Remote"},  # a part-time opening is not the full-time one
])
def test_templated_postings_of_other_jobs_are_kept(tmp_path, settings, change) -> None:
    row = first_sample()
    read = read_listings(str(write_jsonl(tmp_path / "j.jsonl", [row, one_word_changed(row, id="other-1", **change)])), settings)
    assert [x.id for x in read.listings] == [row["id"], "other-1"] and read.folds == []


def test_titles_compare_by_stemmed_words_and_the_threshold_is_a_setting(tmp_path, settings) -> None:
    row = {**first_sample(), "title": "Backend Software Developer"}
    rows = [row, one_word_changed(row, id="dev-2", title="Backend Software Development")]  # a reworded repost
    src = write_jsonl(tmp_path / "j.jsonl", rows)
    assert [f.id for f in read_listings(str(src), settings).folds] == ["dev-2"]
    for off in (None, 0.0):
        quiet = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"near_duplicate_threshold": off})})
        assert len(read_listings(str(src), quiet).listings) == 2
    strict = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"near_duplicate_threshold": 1.0})})
    assert read_listings(str(src), strict).folds == []


def test_the_sample_has_no_near_duplicates_beyond_its_exact_reposts(settings) -> None:
    read = read_listings("sample", settings)
    assert read.duplicates == 6 and read.folds == []
