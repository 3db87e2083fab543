"""The new training options through the `jobrag` app in-process: gen-pairs --keyphrases, finetune --pairs-file / --negatives-from."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_app.cli import app

runner = CliRunner()


def sample_ids() -> list[str]:
    from ingest.sources import SAMPLE_PATH

    return [json.loads(line)["id"] for line in SAMPLE_PATH.read_text().splitlines()]


def test_gen_pairs_with_yake_keyphrases_writes_specifics_queries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRAG_HOME", str(tmp_path / "home"))
    out = tmp_path / "pairs"
    result = runner.invoke(app, ["gen-pairs", "--source", "sample", "--limit", "80", "--out", str(out), "--keyphrases", "yake",
                                 "--specifics-weight", "2"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["keyphrases"] == "yake" and meta["specifics_weight"] == 2.0
    assert "specifics" in set(json.loads((out / "styles.json").read_text()).values())
    bad = runner.invoke(app, ["gen-pairs", "--source", "sample", "--limit", "5", "--out", str(out), "--keyphrases", "rake"])
    assert bad.exit_code == 2 and "finetune.keyphrases" in bad.stderr


def test_pairs_file_errors_are_one_line_and_name_the_rejected_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRAG_HOME", str(tmp_path / "home"))
    log = tmp_path / "log.csv"
    log.write_text("query,listing_id,label\ndata analyst,nope-1,1\nsql,nope-2,0\n")
    result = runner.invoke(app, ["finetune", "--pairs-file", str(log), "--source", "sample"])
    assert result.exit_code == 2 and "2 of 2 rows rejected: unknown listing id: log.csv:2 'nope-1'" in result.stderr
    result = runner.invoke(app, ["finetune", "--source", "sample"])
    assert result.exit_code == 2 and "--source goes with --pairs-file" in result.stderr
    result = runner.invoke(app, ["finetune", "--pairs-file", str(log), "--pairs", str(tmp_path)])
    assert result.exit_code == 2 and "mixes with a gen-pairs dir only" in result.stderr
    result = runner.invoke(app, ["finetune", "--negatives-from", "lexical"])
    assert result.exit_code == 2 and "finetune.negatives" in result.stderr


@pytest.mark.slow
def test_finetune_on_a_search_log_with_both_negative_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRAG_HOME", str(tmp_path / "home"))
    ids = sample_ids()
    log = tmp_path / "clicks.csv"
    with log.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["query", "listing_id", "label"])
        for i, lid in enumerate(ids[:300]):
            writer.writerow([f"search {i % 150}", lid, 1 if i < 150 else 0])  # each query: one click, one skipped impression
        writer.writerow(["search 0", "unknown-listing", 1])
    out = tmp_path / "model"
    result = runner.invoke(app, ["finetune", "--pairs-file", str(log), "--source", "sample", "--negatives-from", "both", "--max-steps", "2",
                                 "--batch-size", "8", "--max-seq-length", "32", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "rejected (unknown listing id), e.g. clicks.csv:302 'unknown-listing'" in result.output.replace("\n", " ")
    manifest = json.loads((out / "manifest.json").read_text())
    files = manifest["data"]["meta"]["pairs_files"]
    assert files["rows"] == 301 and files["rejected: unknown listing id"] == 1 and manifest["hyperparameters"]["negatives"] == "both"
    negatives = manifest["hard_negatives"]
    assert negatives["pairs"] == manifest["train_rows"] and negatives["bm25_with_negative"] > 0
    assert negatives["dense_given_negative"] > 0  # skipped impressions became negatives
    assert manifest["steps"] == 2 and manifest["weights_sha256_16"] != manifest["base_weights_sha256_16"]
