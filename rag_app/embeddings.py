"""The embedder contract and its factory: `embedding.mode` -> an `Embedder` the rest of the app uses without caring which.

Every embedder is a llama-index `BaseEmbedding` (retrievers and ragas call `get_query_embedding` /
`get_text_embedding_batch`) plus what ingestion and the store need: bulk document encoding, the model's own tokenizer
(chunk sizes in its word pieces), its window, its dimension and the facts that fingerprint a collection. The
implementations live in their own modules (`st_embedder`, `openai_embedder`), imported only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag_app.errors import unknown_mode
from rag_app.settings import EMBEDDING_MODES

if TYPE_CHECKING:
    import numpy as np

    from rag_app.settings import EmbeddingSettings


@runtime_checkable
class Embedder(Protocol):
    """What jobrag needs from an embedding model (on top of llama-index's `BaseEmbedding` interface)."""

    def get_query_embedding(self, query: str) -> list[float]: ...

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[list[float]]: ...

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        """One bulk call for many documents (normalised when `embedding.normalize`)."""

    def tokenizer(self) -> Callable[[str], list[int]] | None:
        """The model's own tokenizer (chunk sizes are counted in it); None: llama-index's default."""

    def count_tokens(self, texts: list[str]) -> list[int]: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_seq_length(self) -> int | None:
        """The model's window in word pieces (longer chunks would be truncated silently); None when unknown."""

    @property
    def torch_model(self) -> Any:
        """The underlying sentence-transformers model, or None (remote endpoints)."""

    @property
    def model_ref(self) -> str:
        """What `embedding.model` must say to load this model again (absolute for a local dir)."""

    def fingerprint_facts(self) -> dict[str, Any]:
        """Everything that changes the vectors: model, weights hash, dimension, window, prompts, backend."""

    def close(self) -> None: ...


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    """Return the configured embedder; raises ConfigError naming the valid modes for an unknown one."""
    if settings.mode == "sentence-transformers":
        from rag_app.st_embedder import SentenceTransformerEmbedding

        return SentenceTransformerEmbedding.from_settings(settings)
    if settings.mode == "openai":
        from rag_app.openai_embedder import OpenAICompatibleEmbedding

        return OpenAICompatibleEmbedding.from_settings(settings)
    raise unknown_mode("embedding", settings.mode, EMBEDDING_MODES)
