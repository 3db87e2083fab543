"""Shared fixtures. Heavy parts are real: the packaged MiniLM embedder (loaded once per session) and Chroma on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED_DATA} not present")
    for item in items:
        if "shared" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the repo's settings.yaml or the developer's JOBRAG_* env unless it sets them itself."""
    for key in list(os.environ):
        if key.startswith("JOBRAG_"):
            monkeypatch.delenv(key)
    cfg = tmp_path / "config"
    cfg.mkdir()
    monkeypatch.setenv("JOBRAG_CONFIG_DIR", str(cfg))
    monkeypatch.setenv("JOBRAG_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="session")
def embedder():
    """The real packaged all-MiniLM-L6-v2, loaded once."""
    from rag_app.embeddings import build_embedder
    from rag_app.settings import EmbeddingSettings

    return build_embedder(EmbeddingSettings())


@pytest.fixture
def settings(tmp_path: Path):
    from rag_app.settings import load_settings

    return load_settings(home=tmp_path / "home", ingest={"batch_listings": 8})


@pytest.fixture
def store(settings):
    from rag_app.store import Store

    return Store.from_settings(settings)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def listing_row(i: int, **kw) -> dict:
    base = {"id": f"t-{i}", "title": f"Registered Nurse {i}", "company": f"Clinic {i}", "location": "Austin, TX",
            "description": f"Provide patient care on a med-surg unit, shift pattern {i}. " * 6, "salary": "$40 - $50 an hour",
            "work_type": "Full-time; On-site"}
    return {**base, **kw}
