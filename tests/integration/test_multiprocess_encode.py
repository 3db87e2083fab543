"""The multi-device path: sentence-transformers' own multi-process pool, exercised here with two CPU processes."""

from __future__ import annotations

import numpy as np
import pytest

from rag_app.embeddings import build_embedder
from rag_app.settings import EmbeddingSettings


@pytest.mark.slow
def test_pool_encoding_matches_single_process(embedder) -> None:
    texts = [f"Registered nurse job number {i} on a night shift in Houston" for i in range(40)]
    pooled = build_embedder(EmbeddingSettings(devices=["cpu", "cpu"], device="cpu"))
    try:
        got = pooled.encode_documents(texts)
        assert pooled._st_pool is not None  # the pool was started and is kept for the next batch
        again = pooled.encode_documents(texts[:5])
    finally:
        pooled.close()
    want = embedder.encode_documents(texts)
    assert got.shape == want.shape and np.allclose(got, want, atol=1e-5) and np.allclose(again, want[:5], atol=1e-5)
