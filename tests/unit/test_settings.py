from __future__ import annotations

from pathlib import Path

import pytest

from rag_app.errors import ConfigError
from rag_app.settings import Settings, load_settings


def _cfg(tmp_path: Path) -> Path:
    return tmp_path / "config"


def test_defaults_describe_every_field() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(name)
            ann = field.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                missing += [f"{name}.{m}" for m in walk(ann)]
        return missing

    assert walk(Settings) == []


def test_precedence_yaml_then_profile_then_env_then_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(tmp_path)
    (cfg / "settings.yaml").write_text("retrieval: {top_k: 3, candidate_k: 30, rrf_k: 10}\nllm: {mode: local}\n")
    (cfg / "settings-a.yaml").write_text("retrieval: {top_k: 4, candidate_k: 40}\n")
    (cfg / "settings-b.yaml").write_text("retrieval: {top_k: 5}\n")
    assert load_settings().retrieval.top_k == 3
    monkeypatch.setenv("JOBRAG_PROFILES", "a,b")
    s = load_settings()
    assert (s.retrieval.top_k, s.retrieval.candidate_k, s.retrieval.rrf_k) == (5, 40, 10)  # later profile wins, yaml fills
    monkeypatch.setenv("JOBRAG_RETRIEVAL__TOP_K", "6")
    assert load_settings().retrieval.top_k == 6
    assert load_settings(retrieval={"top_k": 7}).retrieval.top_k == 7
    assert load_settings().llm.mode == "local"


def test_the_repos_test_profile_turns_generation_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from rag_app.settings import load_settings

    monkeypatch.setenv("JOBRAG_PROFILES", "test")
    settings = load_settings()
    assert settings.llm.mode == "none" and settings.ingest.batch_listings == 8


def test_missing_profile_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRAG_PROFILES", "nope")
    with pytest.raises(ConfigError, match="settings-nope.yaml not found"):
        load_settings()


def test_invalid_mode_names_the_field_and_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBRAG_EMBEDDING__MODE", "word2vec")
    with pytest.raises(ConfigError, match=r"embedding\.mode: .*sentence-transformers.*openai.*word2vec"):
        load_settings()


def test_factories_list_valid_modes() -> None:
    from rag_app.embeddings import build_embedder
    from rag_app.settings import EmbeddingSettings

    bogus = EmbeddingSettings.model_construct(mode="word2vec")
    with pytest.raises(ConfigError, match="valid modes: sentence-transformers, openai"):
        build_embedder(bogus)


def test_openai_embedding_needs_api_base() -> None:
    from rag_app.embeddings import build_embedder
    from rag_app.settings import EmbeddingSettings

    with pytest.raises(ConfigError, match="api_base"):
        build_embedder(EmbeddingSettings(mode="openai", model="text-embedding-3-small"))
