"""Error paths of the `jobrag` app in-process (typer's CliRunner): the app itself maps JobragError to exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag_app.cli import app
from tests.conftest import listing_row, write_jsonl

runner = CliRunner()


@pytest.mark.parametrize("args, code, message", [
    (["ingest", "--source", "/no/such/jobs.csv"], 2, "does not exist"),
    (["ask", "nurse", "--filter", "colour=red", "--llm", "none"], 2, "filter 'colour=red'"),
    (["compare", "--queries", "/no/such/dir", "--retriever", "b=bm25"], 2, "does not exist"),
    (["compare", "--queries", "/no/such/dir", "--retriever", "bm25"], 2, "LABEL=SPEC"),
    (["finetune", "--pairs", "/no/such/pairs"], 2, "is not a gen-pairs dir"),
])
def test_errors_map_to_exit_codes_in_process(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)  # no traceback escaped


def test_nothing_ingested_exits_4(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", [listing_row(i, description="") for i in range(2)])
    result = runner.invoke(app, ["ingest", "--source", str(bad), "--no-progress"])
    assert result.exit_code == 4 and "all 2 rows rejected" in result.stderr


def test_gen_pairs_out_elsewhere_on_a_fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "fresh-home"
    monkeypatch.setenv("JOBRAG_HOME", str(home))
    out = tmp_path / "pairs-out"
    result = runner.invoke(app, ["gen-pairs", "--source", "sample", "--out", str(out), "--queries-per-listing", "1"])
    assert result.exit_code == 0, result.output
    assert (home / "pairs" / "LATEST").read_text() == str(out.resolve())
    assert json.loads((out / "meta.json").read_text())["queries_per_listing"] == 1
