"""An honest name for the retriever that runs (chat, `ask`, the UI and the API show it).

`retrieval.mode` defaults to hybrid (dense + BM25 fused), the best on every query set measured. A collection written by
an older version, or copied without `<home>/bm25/`, still answers in hybrid: the factory rebuilds its BM25 copy from
the collection on first use (rag_app.retrievers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag_app.model_paths import display_name
from rag_app.retrievers import parse_spec

if TYPE_CHECKING:
    from rag_app.settings import Settings


def retriever_label(spec: str, settings: Settings) -> str:
    """What a person should read for a retriever spec: 'all-MiniLM-L6-v2 + BM25', 'finetuned (onnx-int8)', 'BM25'."""
    kind, model = parse_spec(spec)
    name = display_name(model or settings.embedding.model).split("/")[-1]
    if settings.embedding.backend != "torch":
        name = f"{name} ({settings.embedding.backend})"
    return {"dense": name, "bm25": "BM25", "hybrid": f"{name} + BM25"}[kind]
