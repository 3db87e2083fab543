"""Embedding backends on the real packaged MiniLM: torch, onnx (fp32) and onnx-int8 load, encode and agree; exports are
built once, reused, rebuilt when stale, never written into an installed package; the fingerprint separates backends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ingest.sources import SAMPLE_PATH
from rag_app.errors import ConfigError
from rag_app.settings import EmbeddingSettings
from rag_app.store import Store

QUERIES = ["remote python data engineer", "night shift icu nurse houston", "part-time line cook weekends", "cdl-a truck driver"]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def backends(onnx_dir):
    """One embedder per onnx backend, exports built into a module-scoped cache (about 15 s, once)."""
    from rag_app.embeddings import build_embedder

    return {b: build_embedder(EmbeddingSettings(backend=b, onnx_dir=onnx_dir)) for b in ("onnx", "onnx-int8")}


def sample_texts(n: int = 24) -> list[str]:
    rows = [json.loads(line) for line in SAMPLE_PATH.read_text().splitlines()[:n]]
    return [f"{r['title']} | {r['company']} | {r['location']}\n\n{r['description']}" for r in rows]


@pytest.mark.parametrize("backend, mean_floor, min_floor", [("onnx", 0.9999, 0.9999), ("onnx-int8", 0.99, 0.98)])
def test_each_backend_loads_encodes_and_agrees_with_fp32(embedder, backends, backend: str, mean_floor: float, min_floor: float) -> None:
    texts = sample_texts()
    ours = backends[backend].encode_documents(texts)
    reference = embedder.encode_documents(texts)
    assert ours.shape == reference.shape == (len(texts), 384)
    cosine = (ours * reference).sum(1)  # both normalised
    assert cosine.mean() >= mean_floor and cosine.min() >= min_floor, (backend, cosine.mean(), cosine.min())
    queries = np.array([backends[backend].get_query_embedding(q) for q in QUERIES])
    assert ((queries * np.array([embedder.get_query_embedding(q) for q in QUERIES])).sum(1) >= min_floor).all()
    ranks = np.argsort(-(queries @ reference.T), axis=1)[:, 0]  # the same top listing per query as torch's vectors
    assert (ranks == np.argsort(-(np.array([embedder.get_query_embedding(q) for q in QUERIES]) @ reference.T), axis=1)[:, 0]).all()


def test_the_fingerprint_separates_backends_and_keeps_torchs(embedder, backends) -> None:
    from rag_app.model_paths import fingerprint

    torch_facts = embedder.fingerprint_facts()
    assert "backend" not in torch_facts  # so every collection built before backends existed keeps its name
    assert set(torch_facts) == {"mode", "model", "weights", "dim", "max_seq_length", "query_prompt", "document_prompt"}
    facts = {b: e.fingerprint_facts() for b, e in backends.items()}
    assert facts["onnx"]["backend"] == "onnx" and facts["onnx-int8"]["backend"] == "onnx-int8"
    assert facts["onnx"]["weights"] == facts["onnx-int8"]["weights"] == torch_facts["weights"]  # hashed before the swap
    prints = {fingerprint(f) for f in (torch_facts, *facts.values())}
    names = {Store.derived_name(Store.collection_facts(f, 254, 32, 1)) for f in (torch_facts, *facts.values())}
    assert len(prints) == len(names) == 3


def test_exports_go_to_the_cache_for_an_installed_package_and_are_reused(backends, onnx_dir) -> None:
    from rag_app.embeddings import build_embedder
    from rag_app.model_paths import resolve_model

    packaged = Path(resolve_model("sentence-transformers/all-MiniLM-L6-v2"))
    weights = backends["onnx-int8"].fingerprint_facts()["weights"]
    path = backends["onnx-int8"].torch_model[0].model.path
    assert path == onnx_dir / weights / "model_qint8_avx2.onnx" and "site-packages" in packaged.parts
    assert not (packaged / "onnx" / "model_qint8_avx2.json").exists()  # nothing written beside an installed package's weights
    built = path.stat().st_mtime_ns
    again = build_embedder(EmbeddingSettings(backend="onnx-int8", onnx_dir=onnx_dir))
    assert again.torch_model[0].model.path == path and path.stat().st_mtime_ns == built  # reused, not rebuilt


def test_a_stale_export_is_rebuilt(backends, tmp_path) -> None:
    from rag_app import onnx_backend

    cached = backends["onnx"].torch_model[0].model.path
    weights = backends["onnx"].fingerprint_facts()["weights"]
    shutil.copy(cached, tmp_path / cached.name)
    shutil.copy(cached.with_suffix(".json"), tmp_path / cached.with_suffix(".json").name)
    copy = tmp_path / cached.name
    assert onnx_backend.is_current(copy, weights, int8=False)
    assert not onnx_backend.is_current(copy, "another-weights", int8=False) and not onnx_backend.is_current(copy, weights, int8=True)
    sidecar = json.loads(copy.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps({**sidecar, "key": {**sidecar["key"], "recipe": 0}}))
    assert not onnx_backend.is_current(copy, weights, int8=False)  # an older recipe: locate() builds it again


def test_onnx_backends_refuse_several_devices_and_a_gpu() -> None:
    from rag_app.embeddings import build_embedder

    with pytest.raises(ConfigError, match=r"embedding\.devices=\['cuda:0', 'cuda:1'\].*onnx_threads"):
        build_embedder(EmbeddingSettings(backend="onnx-int8", devices=["cuda:0", "cuda:1"]))
    with pytest.raises(ConfigError, match="runs on the CPU"):
        build_embedder(EmbeddingSettings(backend="onnx", device="cuda"))


def test_unknown_backend_lists_the_valid_ones(monkeypatch) -> None:
    from rag_app.settings import load_settings

    monkeypatch.setenv("JOBRAG_EMBEDDING__BACKEND", "tensorrt")
    with pytest.raises(ConfigError, match=r"embedding\.backend: .*torch.*onnx.*onnx-int8"):
        load_settings()


def jobrag(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag_app.cli", *args], capture_output=True, text=True, timeout=600, env={**os.environ, **env})


@pytest.mark.slow
def test_export_writes_a_model_the_embedder_flag_accepts(tmp_path, other_model_dir) -> None:
    model = shutil.copytree(other_model_dir, tmp_path / "model")
    home = tmp_path / "home"
    env = {"JOBRAG_HOME": str(home), "JOBRAG_EMBEDDING__BACKEND": "onnx-int8"}
    export = jobrag("export", "--model", str(model), "--backend", "onnx-int8", env=env)
    assert export.returncode == 0, export.stderr
    written = model / "onnx" / "model_qint8_avx2.onnx"
    assert written.is_file() and json.loads(written.with_suffix(".json").read_text())["self_check_min_cosine"] >= 0.97
    ingest = jobrag("ingest", "--embedder", str(model), "--source", "sample", "--limit", "30", "--json", "--no-progress", env=env)
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["added"] == 30 and not (home / "cache" / "onnx").exists()  # the export beside the weights was used
    ask = jobrag("ask", "registered nurse", "--embedder", str(model), "--llm", "none", "--json", env=env)
    assert ask.returncode == 0, ask.stderr
    answer = json.loads(ask.stdout)
    assert answer["sources"] and answer["retriever"] == "hybrid"  # the new default, over the int8 collection and its BM25 index
    torch_ask = jobrag("ask", "registered nurse", "--embedder", str(model), "--llm", "none", env={**env, "JOBRAG_EMBEDDING__BACKEND": "torch"})
    assert torch_ask.returncode == 2 and "no collection" in torch_ask.stderr  # int8 vectors never answer for torch's collection
