"""Any OpenAI-compatible `/embeddings` endpoint (OpenAI, vLLM, TEI, Ollama) as an `Embedder`, through llama-index's
OpenAILikeEmbedding; query/document prompts are prepended client-side."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from llama_index.embeddings.openai_like import OpenAILikeEmbedding
from pydantic import PrivateAttr

from rag_app.errors import ConfigError
from rag_app.settings import EmbeddingSettings


class OpenAICompatibleEmbedding(OpenAILikeEmbedding):
    _settings: EmbeddingSettings = PrivateAttr()
    _dim: int | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings) -> OpenAICompatibleEmbedding:
        if not settings.api_base:
            raise ConfigError("embedding.mode=openai needs embedding.api_base (e.g. http://127.0.0.1:8000/v1)")
        api_key = settings.api_key.get_secret_value() if settings.api_key else "unused"
        embedder = cls(model_name=settings.model, api_base=settings.api_base, api_key=api_key, embed_batch_size=settings.batch_size,
                       max_retries=2, timeout=60)
        embedder._settings = settings
        return embedder

    def _get_query_embedding(self, query: str) -> list[float]:
        return super()._get_query_embedding(self._settings.query_prompt + query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return super()._get_text_embedding(self._settings.document_prompt + text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return super()._get_text_embeddings([self._settings.document_prompt + t for t in texts])

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        vectors = np.asarray(self.get_text_embedding_batch(texts), dtype=np.float32)
        if self._settings.normalize:
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
        if self._dim is None:
            self._dim = len(self.get_text_embedding("dimension probe"))
        return self._dim

    @property
    def max_seq_length(self) -> None:
        return None

    @property
    def torch_model(self) -> None:
        return None

    @property
    def model_ref(self) -> str:
        return self._settings.model

    def fingerprint_facts(self) -> dict[str, Any]:
        s = self._settings
        return {"mode": "openai", "model": s.model, "api_base": s.api_base, "dim": self.dimension,
                "query_prompt": s.query_prompt, "document_prompt": s.document_prompt}
