"""BEIR / STS-B / jobs-corpus loaders: tiny dirs written here, plus the real files when ../shared is present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.benchmarks import beir_training_data, is_beir_dir, is_stsb_dir, load_beir, load_corpus, stsb_training_data
from rag_app.errors import SourceError
from tests.conftest import SHARED_DATA


def _beir(tmp: Path) -> Path:
    (tmp / "qrels").mkdir(parents=True)
    (tmp / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n" for i in range(20)))
    (tmp / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"}) + "\n" for i in range(20)))
    (tmp / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(15)))
    (tmp / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t{1 + i % 2}\n" for i in range(15, 20)) + "q19\td1\t0\n")
    return tmp


def test_beir_dir_loads_with_graded_qrels(tmp_path: Path) -> None:
    d = _beir(tmp_path / "b")
    assert is_beir_dir(d) and not is_stsb_dir(d)
    test = load_beir(d, "test")
    assert set(test.relevant_docs) == {f"q{i}" for i in range(15, 20)} and test.corpus["d3"] == "T3 text 3"
    assert test.graded["q15"] == {"d15": 2} and test.relevant_docs["q19"] == ["d19"]  # grade 0 is not relevant
    data = beir_training_data(d, seed=0, val_fraction=0.2)
    assert len(data.train.queries) == 12 and len(data.val.queries) == 3 and not set(data.train.queries) & set(data.val.queries)
    with pytest.raises(SourceError, match="no qrels"):
        load_beir(d, "dev")


def test_jobs_corpus_text_is_header_then_description(tmp_path: Path) -> None:
    path = tmp_path / "jobs.jsonl"
    path.write_text(json.dumps({"id": "j1", "title": "Nurse", "company": "Clinic", "location": "Austin, TX", "description": "Care."}) + "\n")
    assert load_corpus(path) == {"j1": "Nurse | Clinic | Austin, TX\n\nCare."}


@pytest.mark.shared
def test_real_benchmarks_match_their_published_counts() -> None:
    scifact = SHARED_DATA / "benchmarks" / "scifact"
    test = load_beir(scifact, "test")
    assert len(test.relevant_docs) == 300 and len(test.corpus) == 5183 and sum(map(len, test.relevant_docs.values())) == 339
    sts = stsb_training_data(SHARED_DATA / "benchmarks" / "stsb")
    assert (len(sts.train.score), len(sts.val.score), len(sts.test.score)) == (5749, 1500, 1379) and max(sts.train.score) <= 1.0
    dev = load_beir(SHARED_DATA / "jobs" / "dev_a", "test", load_corpus(SHARED_DATA / "jobs" / "jobs_a.jsonl"))
    assert len(dev.relevant_docs) == 80 and len(dev.corpus) == 5708 and sum(map(len, dev.relevant_docs.values())) == 737


def test_beir_val_corpus_is_sampled_but_keeps_its_positives_and_test_ranks_everything(tmp_path: Path) -> None:
    d = _beir(tmp_path / "b")
    data = beir_training_data(d, seed=0, val_fraction=0.2, val_corpus_size=5)
    positives = {doc for docs in data.val.relevant_docs.values() for doc in docs}
    assert positives <= set(data.val.corpus) and len(data.val.corpus) == len(positives) + 5
    assert len(data.train.corpus) == len(data.test.corpus) == 20
    assert beir_training_data(d, seed=0, val_fraction=0.2, val_corpus_size=5).val.corpus == data.val.corpus  # seeded
    assert len(beir_training_data(d, seed=0, val_fraction=0.2, val_corpus_size=None).val.corpus) == 20
