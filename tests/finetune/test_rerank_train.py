"""`jobrag train-reranker` and the fusion.json of `jobrag finetune`, through the CLI in-process, then loaded by specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_app.cli import app

runner = CliRunner()


def ok(args: list[str]) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["train-reranker", "--pairs", "/no/such/pairs"], "is not a gen-pairs dir"),
    (["compare", "--queries", "/no/such/dir", "--retriever", "r=colbert+rerank"], "+rerank[:CE_MODEL] and then +understand"),
])
def test_train_reranker_and_rerank_specs_fail_clearly(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and message in result.stderr, result.output


@pytest.mark.slow
def test_train_reranker_and_finetune_write_what_the_retrievers_load(tmp_path: Path) -> None:
    from rag_app.fusion import FUSION_FILE, read_choice
    from rag_app.rerank import CrossEncoderScorer, RerankRetriever
    from rag_app.retrievers import HybridRetriever, RetrieverFactory
    from rag_app.settings import load_settings

    pairs, ce, ft = tmp_path / "pairs", tmp_path / "ce", tmp_path / "ft"
    ok(["gen-pairs", "--source", "sample", "--limit", "60", "--out", pairs])
    ok(["train-reranker", "--pairs", pairs, "--out", ce, "--max-steps", "2", "--batch-size", "8", "--max-length", "64", "--eval-queries", "5"])
    manifest = json.loads((ce / "manifest.json").read_text())
    assert manifest["steps"] == 2 and manifest["train_rows"] == 2 * manifest["hard_negatives"]["pairs"]
    assert {"val_ndcg@10", "val_base_ndcg@10"} <= set(manifest["after"]) and manifest["data"]["file_sha256_16"]["train.json"]
    scorer = CrossEncoderScorer.load(str(ce))
    assert len(scorer("sushi chef", ["Sushi Chef | Kaiyo\n\nNigiri.", "Truck Driver | Red River\n\nFreight."])) == 2

    ok(["finetune", "--pairs", pairs, "--out", ft, "--max-steps", "1", "--batch-size", "8", "--max-seq-length", "64"])
    choice = read_choice(ft)
    assert choice is not None and choice.split["file_sha256_16"] and choice.value == max(max(v.values()) for v in choice.candidates.values())
    assert "## jobrag: hybrid fusion" in (ft / "README.md").read_text()

    ok(["ingest", "--source", "sample", "--limit", "12", "--embedder", ft, "--no-progress"])
    retriever = RetrieverFactory.from_settings(load_settings()).build(f"hybrid:{ft}+rerank:{ce}", top_k=3)
    assert isinstance(retriever, RerankRetriever) and isinstance(retriever.inner, HybridRetriever)
    assert retriever.inner.fusion.source == str(ft.resolve() / FUSION_FILE) and len(retriever.retrieve("registered nurse")) == 3
