"""ONNX Runtime encoders for sentence-transformers models: `embedding.backend: onnx | onnx-int8`.

sentence-transformers' own `backend="onnx"` goes through optimum, whose only ONNX release (optimum-onnx 0.1.0) pins
transformers<4.58 and fails to import on transformers 5. So the route here needs only `onnx` and `onnxruntime`:

1. `torch.onnx.export` (the TorchScript exporter, opset 17) of the model's transformer with eager attention, traced on a
   *padded* batch (traced with an all-ones mask, transformers 5 leaves the mask out of the graph) -> `onnx/model.onnx`;
2. `onnx-int8`: onnxruntime's `quantize_dynamic` with per-channel, 7-bit (reduce_range) weights on the MatMuls only ->
   `onnx/model_qint8_avx2.onnx` (per-tensor weights saturate on AVX2 CPUs without VNNI: cosine 0.94 instead of 0.993);
3. an ONNX Runtime session (ORT_ENABLE_ALL fuses the graph at load) replaces the HF model inside sentence-transformers'
   Transformer module, so tokenisation, length sorting, pooling, normalisation and prompts stay its own.

Exports live beside the weights (`<model>/onnx/`, sentence-transformers' own layout and file names) or, when that
directory is an installed package or not writable, under a cache directory keyed by the weights hash. Each is written
atomically with a JSON sidecar (weights hash, recipe) and checked against torch before it is installed; a stale one is
rebuilt.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from rag_app.errors import ConfigError

logger = logging.getLogger(__name__)

RECIPE = 1  # bump when the export or quantisation recipe changes: existing exports are rebuilt
OPSET = 17
FILE_NAMES = {False: "model.onnx", True: "model_qint8_avx2.onnx"}  # sentence-transformers' names for the same files
QUANT_OPTIONS: dict[str, Any] = {"per_channel": True, "reduce_range": True, "op_types_to_quantize": ["MatMul"]}
MIN_COSINE = {False: 0.9999, True: 0.97}  # self-check against torch on a padded batch
INT8 = {"onnx": False, "onnx-int8": True}  # the onnx backends of embedding.backend: quantised or not


def _require_onnx() -> None:
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"the onnx embedding backends need {' and '.join(missing)}: pip install {' '.join(missing)} (or use embedding.backend=torch)")


def _recipe(weights: str, int8: bool) -> dict[str, Any]:
    return {"recipe": RECIPE, "weights": weights, "opset": OPSET, "quantisation": QUANT_OPTIONS if int8 else None}


def is_current(path: Path, weights: str, int8: bool) -> bool:
    """True when `path` exists and its sidecar says it was built from these weights with this recipe."""
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file()):
        return False
    try:
        return json.loads(sidecar.read_text()).get("key") == json.loads(json.dumps(_recipe(weights, int8)))
    except (OSError, ValueError):
        return False


def _sample(tokenizer: Any) -> dict[str, Any]:
    return tokenizer(["a padded sample sentence for tracing the graph", "short one"], padding=True, return_tensors="pt")


def _export_fp32(st_model: Any, path: Path) -> None:
    import torch

    inner = copy.deepcopy(st_model[0].model).eval()
    inner.set_attn_implementation("eager")  # the plainest graph; sdpa exports bigger and ORT fuses it less
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in st_model.tokenizer.model_input_names]

    class LastHidden(torch.nn.Module):  # transformers 5 forward takes use_cache etc. before token_type_ids: pass by keyword
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    sample = _sample(st_model.tokenizer)
    axes = {n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings say nothing actionable here
        torch.onnx.export(LastHidden(), tuple(sample[n] for n in names), str(path), dynamo=False,  # dynamo needs onnxscript
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET)


class _QuietQuantiser(logging.Filter):
    """quantize_dynamic logs to the root logger: per-tensor INFO lines and "Please consider to run pre-processing before
    quantization" (advice for static quantisation of CNNs that does not apply here). Errors still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or "onnxruntime" not in record.pathname


def _quantize(fp32: Path, path: Path) -> None:
    from onnxruntime.quantization import quantize_dynamic

    root, quiet = logging.getLogger(), _QuietQuantiser()
    root.addFilter(quiet)
    try:
        quantize_dynamic(fp32, path, **QUANT_OPTIONS)
    finally:
        root.removeFilter(quiet)


def _mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    pooled = (hidden * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def _self_check(st_model: Any, path: Path, int8: bool) -> float:
    """Min cosine between the file and torch on a padded batch; refuses a broken export."""
    import torch

    sample = _sample(st_model.tokenizer)
    with torch.no_grad():
        ref = st_model[0].model(**sample).last_hidden_state.float().numpy()
    session = ort_session(path, threads=1)
    out = session.run(None, {i.name: sample[i.name].numpy() for i in session.get_inputs()})[0]
    mask = sample["attention_mask"].numpy()
    cosine = float((_mean_pool(out, mask) * _mean_pool(ref, mask)).sum(1).min())
    if cosine < MIN_COSINE[int8]:
        raise ConfigError(f"the ONNX export {path.name} disagrees with torch (cosine {cosine:.4f} < {MIN_COSINE[int8]}); "
                          "this model's architecture may not export cleanly: use embedding.backend=torch")
    return cosine


def build(st_model: Any, weights: str, out_dir: Path, int8: bool) -> Path:
    """Build (or reuse) the fp32 or int8 export of `st_model` in `out_dir`; `weights` is its weights hash (taken before any swap)."""
    _require_onnx()
    target = out_dir / FILE_NAMES[int8]
    if is_current(target, weights, int8):
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".building-") as scratch:
        built = Path(scratch) / target.name
        if int8:
            _quantize(build(st_model, weights, out_dir, int8=False), built)
        else:
            _export_fp32(st_model, built)
        cosine = _self_check(st_model, built, int8)
        os.replace(built, target)  # atomic: a reader sees the old file or the new one, never half of one
    import onnxruntime

    sidecar = {"key": _recipe(weights, int8), "onnxruntime": onnxruntime.__version__, "self_check_min_cosine": cosine,
               "built_s": round(time.perf_counter() - started, 1)}
    target.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))
    logger.info("built %s in %.1fs (self-check cosine %.5f)", target, time.perf_counter() - started, cosine)
    return target


def _writable_beside(model_dir: Path) -> bool:
    """The model's own directory takes the export unless it is an installed package or read-only."""
    if {"site-packages", "dist-packages"} & set(model_dir.resolve().parts):
        return False
    return os.access(model_dir, os.W_OK) and (not (model_dir / "onnx").exists() or os.access(model_dir / "onnx", os.W_OK))


def locate(st_model: Any, weights: str, model_dir: Path | None, cache_root: Path, int8: bool) -> Path:
    """A current export for these weights: beside the weights, else in `cache_root/<weights>/`; built where allowed."""
    beside = model_dir / "onnx" if model_dir is not None and model_dir.is_dir() else None
    cached = cache_root / weights
    for out_dir in (beside, cached):
        if out_dir is not None and is_current(out_dir / FILE_NAMES[int8], weights, int8):
            return out_dir / FILE_NAMES[int8]
    out_dir = beside if beside is not None and _writable_beside(model_dir) else cached
    logger.warning("building the %s ONNX export of %s in %s (once; about 15 s)", "int8" if int8 else "fp32", model_dir or "the model", out_dir)
    return build(st_model, weights, out_dir, int8)


def ort_session(path: Path, threads: int | None = None) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: ORT's default, one per physical core
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting between ops: never slower in the measurements, quieter on shared cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # no memory arena: it kept 380-660 MB after encoding 32-64 chunks of 256 tokens, against 140-190 MB without it, at the
    # same speed within noise (4 alternating runs on 2 shared cores)
    options.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _ort_encoder(path: Path, config: Any, threads: int | None) -> Any:
    import torch

    class OrtEncoder(torch.nn.Module):
        """Stands in for the HF model inside sentence-transformers' Transformer module (it reads `.config` and calls forward)."""

        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.session = ort_session(path, threads)
            self.input_names = [i.name for i in self.session.get_inputs()]
            self.path = path

        def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None, **_ignored: Any) -> dict[str, Any]:
            given = {"input_ids": input_ids, "attention_mask": attention_mask if attention_mask is not None else torch.ones_like(input_ids),
                     "token_type_ids": token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)}
            feeds = {n: given[n].cpu().numpy().astype(np.int64, copy=False) for n in self.input_names}
            return {"last_hidden_state": torch.from_numpy(self.session.run(["last_hidden_state"], feeds)[0])}

    return OrtEncoder()


def swap_in(st_model: Any, path: Path, threads: int | None = None) -> None:
    """Run `st_model`'s transformer on the ONNX file at `path` (do not `save()` the model afterwards)."""
    st_model[0].model = _ort_encoder(path, st_model[0].model.config, threads)


def check_exportable(st_model: Any, backend: str) -> None:
    """One line when the model's first module is not a plain text transformer the exporter handles."""
    first = st_model[0]
    if type(first).__name__ != "Transformer" or not hasattr(getattr(first, "model", None), "config"):
        raise ConfigError(f"embedding.backend={backend} needs a sentence-transformers model whose first module is a Transformer "
                          f"(got {type(first).__name__}); use embedding.backend=torch")


def export_model(model: str, backend: str) -> Path:
    """`jobrag export` / `finetune --export`: build (or reuse) `backend`'s file beside the weights of the model dir `model`."""
    from sentence_transformers import SentenceTransformer

    from rag_app.model_paths import resolve_model, weights_hash

    if backend not in INT8:
        raise ConfigError(f"unknown export backend {backend!r}; valid: {', '.join(INT8)}")
    path = Path(resolve_model(model))
    if not path.is_dir():
        raise ConfigError(f"{model!r} is not a local model directory: give the directory `jobrag finetune` wrote, or a packaged model")
    out_dir = path / "onnx"
    if not os.access(out_dir if out_dir.exists() else path, os.W_OK):
        raise ConfigError(f"cannot write into {out_dir}; no export is needed there: embedding.backend={backend} builds one under "
                          "embedding.onnx_dir on first use")
    st_model = SentenceTransformer(str(path), device="cpu")
    check_exportable(st_model, backend)
    return build(st_model, weights_hash(st_model), out_dir, INT8[backend])

