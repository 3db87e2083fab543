"""The default retriever as chat, `ask` and the UI run it, and an honest name for what runs.

`retrieval.mode` defaults to hybrid (dense + BM25 fused), the best on every query set measured. A collection always gets
its BM25 index from `jobrag ingest`, but one written by an older version, or copied without `<home>/bm25/`, may lack
it: then hybrid falls back to dense with a logged note instead of failing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from rag_app.model_paths import display_name
from rag_app.retrievers import bm25_dir, parse_spec

if TYPE_CHECKING:
    from rag_app.retrievers import RetrieverFactory
    from rag_app.settings import Settings

logger = logging.getLogger(__name__)


def usable_spec(factory: RetrieverFactory, spec: str | None = None) -> str:
    """`spec` (default `retrieval.mode`), with hybrid turned into dense when the collection has no BM25 index."""
    spec = spec or factory.settings.retrieval.mode
    kind, model = parse_spec(spec)
    if kind != "hybrid":
        return spec
    collection = factory.collection(model)
    if (bm25_dir(factory.settings.home, collection.name) / "jobrag.json").exists():
        return spec
    logger.warning("collection %s has no BM25 index, so retrieval is dense only (run `jobrag ingest` again to build one for hybrid)",
                   collection.name)
    return f"dense:{model}" if model else "dense"


def retriever_label(spec: str, settings: Settings) -> str:
    """What a person should read for a retriever spec: 'all-MiniLM-L6-v2 + BM25', 'finetuned (onnx-int8)', 'BM25'."""
    kind, model = parse_spec(spec)
    name = display_name(model or settings.embedding.model).split("/")[-1]
    if settings.embedding.backend != "torch":
        name = f"{name} ({settings.embedding.backend})"
    return {"dense": name, "bm25": "BM25", "hybrid": f"{name} + BM25"}[kind]
