"""`jobrag export`: write a model's ONNX (fp32 or int8) encoder beside its weights, for `embedding.backend`."""

from __future__ import annotations

import json
import time
from typing import Annotated, Optional

import typer

from rag_app.cli.common import cli_settings, console, kv_table, quiet_transformers


def export(model: Annotated[Optional[str], typer.Option("--model", help="Model dir (e.g. what `jobrag finetune` wrote); default embedding.model.")] = None,
           backend: Annotated[str, typer.Option(help="onnx-int8 (quantised, fastest on CPU) | onnx (fp32).")] = "onnx-int8") -> None:
    """Build (or reuse) the model's ONNX export in <model>/onnx/; `embedding.backend` then loads it without building."""
    from rag_app.onnx_backend import export_model

    settings = cli_settings(model)
    quiet_transformers()
    started = time.perf_counter()
    path = export_model(settings.embedding.model, backend)
    sidecar = json.loads(path.with_suffix(".json").read_text())
    console.print(kv_table(f"export {backend} -> {path}", {
        "size_mb": f"{path.stat().st_size / 2**20:.1f}", "weights": sidecar["key"]["weights"],
        "self-check min cosine vs torch": f"{sidecar['self_check_min_cosine']:.5f}", "seconds": f"{time.perf_counter() - started:.1f}"}))
    console.print(f"use it: JOBRAG_EMBEDDING__BACKEND={backend} jobrag ingest --embedder {settings.embedding.model}")
