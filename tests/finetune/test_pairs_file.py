"""Bring your own pairs: search-log files (CSV, JSONL, labels, triplets) -> leakage-safe splits, alone or with generated pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from finetune.pairs import TemplateGenerator, build_dataset, load_training_data
from finetune.pairs_file import FileReport, listings_of, read_pairs_files, with_file_pairs
from finetune.split import listing_splits
from finetune.train import train_dataset
from rag_app.errors import ConfigError
from rag_app.records import JobListing
from tests.finetune.test_pairs_split import sample  # noqa: F401  (fixture)


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def by_split(listings: list[JobListing], seed: int = 42) -> dict[str, list[str]]:
    _, split_of = listing_splits(listings, seed=seed)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for x in listings:
        out[split_of[x.id]].append(x.id)
    return out


def over(listings: list[JobListing], judgements, report: FileReport, **kw):
    groups, split_of = listing_splits(listings, seed=42)
    return with_file_pairs(judgements, report, {x.id: x.document_text() for x in listings}, split_of, groups, **kw)


def test_csv_and_jsonl_rows_labels_and_triplets_parse_and_bad_rows_are_rejected_with_a_reason(tmp_path: Path) -> None:
    log = write_csv(tmp_path / "log.csv", ["query", "listing_id", "label"], [
        ["sql analyst oakland", "a", 1], ["sql analyst oakland", "b", 0], ["tableau dashboards", "c", ""],
        ["", "d", 1], ["bi developer", "e", "maybe"], ["bi developer", "", 1]])
    triplets = tmp_path / "triplets.jsonl"
    triplets.write_text("\n".join([json.dumps({"query": "dbt looker", "positive": "f", "negative": "g"}),
                                   json.dumps({"query": "etl airflow", "positive": "h"}), "{not json", "",
                                   json.dumps({"query": "x", "positive": "", "negative": "i"})]) + "\n")
    judgements, report = read_pairs_files([log, triplets])
    assert [(j.query, j.listing_id, j.label) for j in judgements] == [
        ("sql analyst oakland", "a", 1), ("sql analyst oakland", "b", 0), ("tableau dashboards", "c", 1),
        ("dbt looker", "f", 1), ("dbt looker", "g", 0), ("etl airflow", "h", 1)]
    assert report.rows == 10 and report.rejected() == 5 and set(report.files) == {str(log), str(triplets)}
    assert report.examples == {"empty query": "log.csv:5", "label is not 0 or 1": "log.csv:6 label='maybe'", "empty listing_id": "log.csv:7",
                               "not a JSON object": "triplets.jsonl:3", "triplet without a positive": "triplets.jsonl:5"}
    (tmp_path / "wrong.csv").write_text("q,doc\nnurse,a\n")
    with pytest.raises(ConfigError, match="no listing_id or positive column.*query, listing_id"):
        read_pairs_files([tmp_path / "wrong.csv"])
    with pytest.raises(ConfigError, match="no pairs file at"):
        read_pairs_files([tmp_path / "missing.csv"])


def test_file_pairs_split_without_leakage_and_unknown_ids_are_counted_with_an_example(tmp_path: Path, sample) -> None:  # noqa: F811
    homes = by_split(sample)
    train, val = homes["train"], homes["val"]
    rows = [[f"query {i}", lid, 1] for i, lid in enumerate(train[:60])]
    rows += [["query 0", train[60], 0], ["query 0", val[0], 0]]  # a judged negative in the query's split, and one across splits
    rows += [["query 1", val[1], 1], ["val query", val[2], 1], ["val query", train[61], 1], ["val query", val[3], 1]]
    rows += [["ghost query", "no-such-id", 1], ["query 2", "also-missing", 0], ["only negatives", train[62], 0]]
    judgements, report = read_pairs_files([write_csv(tmp_path / "log.csv", ["query", "listing_id", "label"], rows)])
    data = over(sample, judgements, report, meta={"source": "sample"})

    assert report.counts["rejected: unknown listing id"] == 2 and report.examples["unknown listing id"] == "log.csv:68 'no-such-id'"
    assert report.counts["judgements across splits (dropped)"] == 3  # query 0's val negative, query 1's val positive, val query's train one
    assert report.counts["queries without a relevant listing (skipped)"] == 1
    q0 = next(q for q, t in data.train.queries.items() if t == "query 0")
    assert data.train.graded[q0] == {train[0]: 1, train[60]: 0} and data.train.relevant_docs[q0] == [train[0]]
    vq = next(q for q, t in data.val.queries.items() if t == "val query")
    assert data.val.relevant_docs[vq] == [val[2], val[3]]  # the split holding most of its relevant listings
    texts = [set(s.queries.values()) for s in (data.train, data.val, data.test)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])  # a query lives in one split
    corpora = [set(s.corpus) for s in (data.train, data.val, data.test)]
    assert not (corpora[0] & corpora[1] or corpora[0] & corpora[2] or corpora[1] & corpora[2])
    assert set().union(*corpora) == {x.id for x in sample}  # every split ranks all of its listings
    for split in (data.train, data.val, data.test):
        assert all(d in split.corpus for docs in split.graded.values() for d in docs)
    assert data.meta["generator"] == "pairs-file" and data.meta["pairs_files"]["examples"]["unknown listing id"]

    _, _, given = train_dataset(data, "mnrl")
    rows_q0 = [i for i, (q, docs) in enumerate(data.train.relevant_docs.items()) if q == q0]
    assert given[rows_q0[0]] == [data.train.corpus[train[60]]]  # the judged negative travels with its row

    only_bad, bad_report = read_pairs_files([write_csv(tmp_path / "bad.csv", ["query", "listing_id"], [["a", "x1"], ["b", "x2"]])])
    with pytest.raises(ConfigError, match=r"no usable pairs .*2 of 2 rows rejected: unknown listing id: bad.csv:2 'x1'"):
        over(sample, only_bad, bad_report)


def test_file_pairs_mix_into_a_generated_dataset_on_its_own_splits(tmp_path: Path, sample) -> None:  # noqa: F811
    gen = TemplateGenerator(sample, 1, seed=3)
    build_dataset(sample, {x.id: gen(x) for x in sample}, tmp_path / "gen", {"generator": "template"}, seed=3)
    base = load_training_data(tmp_path / "gen")
    texts, split_of = listings_of(base)
    homes = {s: [d for d, h in split_of.items() if h == s] for s in ("train", "val", "test")}
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {"query": "night shift charge nurse", "positive": homes["train"][0], "negative": homes["train"][1]},
        {"query": "remote reporting analyst", "listing_id": homes["test"][0], "label": 1}]))
    judgements, report = read_pairs_files([log])
    mixed = with_file_pairs(judgements, report, texts, split_of, base.groups, base=base)

    assert len(mixed.train.queries) == len(base.train.queries) + 1 and len(mixed.test.queries) == len(base.test.queries) + 1
    assert set(base.train.queries) < set(mixed.train.queries) and mixed.train.corpus == base.train.corpus
    fq = next(q for q, t in mixed.train.queries.items() if t == "night shift charge nurse")
    assert fq.startswith("f-") and mixed.train.graded[fq] == {homes["train"][0]: 1, homes["train"][1]: 0}
    assert mixed.name.endswith("+ pairs-file") and mixed.meta["generator"] == "template" and mixed.meta["pairs_files"]["rows"] == 2
    assert mixed.groups == base.groups
