"""gen-pairs -> finetune -> swap the model in by a setting -> its own collection, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def jobrag(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], capture_output=True, text=True, timeout=900,
                          env={**os.environ, **env}, cwd=cwd)


@pytest.mark.slow
@pytest.mark.e2e
def test_generate_train_and_swap_by_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"JOBRAG_HOME": str(home)}
    gen = jobrag("gen-pairs", "--source", "sample", "--queries-per-listing", "2", env=env)
    assert gen.returncode == 0, gen.stderr
    pairs = Path((home / "pairs" / "LATEST").read_text())
    assert json.loads((pairs / "meta.json").read_text())["generator"] == "template"

    ft = jobrag("finetune", "--max-steps", "2", "--batch-size", "8", "--max-seq-length", "64", env=env)
    assert ft.returncode == 0, ft.stderr
    model_dir = home / "models" / "finetuned"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["steps"] == 2 and manifest["weights_sha256_16"] != manifest["base_weights_sha256_16"]
    assert manifest["data"]["file_sha256_16"]["train.json"] and manifest["generator"] == "template"
    assert "test_cosine_ndcg@10" in manifest["metrics_after"] and "val_cosine_ndcg@10" in manifest["metrics_before"]

    cfg = Path(os.environ["JOBRAG_CONFIG_DIR"])
    (cfg / "settings-finetuned.yaml").write_text(f"embedding:\n  model: {model_dir}\n")
    base = jobrag("ingest", "--source", "sample", "--limit", "12", "--json", "--no-progress", env=env)
    tuned = jobrag("--profile", "finetuned", "ingest", "--source", "sample", "--limit", "12", "--json", "--no-progress", env=env)
    assert base.returncode == 0 and tuned.returncode == 0, base.stderr + tuned.stderr
    a, b = json.loads(base.stdout), json.loads(tuned.stdout)
    assert a["collection"] != b["collection"] and a["added"] == b["added"] == 12
    ask = jobrag("--profile", "finetuned", "ask", "remote data engineer", "--llm", "none", "--json", env=env)
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["sources"]


def test_finetune_rejects_a_dir_it_cannot_read(tmp_path: Path) -> None:
    proc = jobrag("finetune", "--pairs", str(tmp_path), env={"JOBRAG_HOME": str(tmp_path / "h")})
    assert proc.returncode == 2 and "is not a gen-pairs dir" in proc.stderr and "Traceback" not in proc.stderr
