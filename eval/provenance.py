"""What a report was computed from, for its manifest.json: SHA-256 of every input file, library versions, code commit.

Two reports with the same hashes, versions and commit (and seed) should agree to the last digit; when they do not, these
say which input moved.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from eval.benchmarks import is_beir_dir

LIBRARIES = ("torch", "sentence-transformers", "transformers", "llama-index-core", "chromadb", "bm25s", "ragas", "jobrag")
CODE_ROOT = Path(__file__).resolve().parents[1]  # the checkout holding eval/ (and rag_app/)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_record(path: Path | None) -> dict[str, str] | None:
    """{"path", "sha256"} of a file; a directory stands for its corpus.jsonl(.gz); None when there is no such file."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        path = next((p for p in (path / "corpus.jsonl", path / "corpus.jsonl.gz") if p.is_file()), path)
    return {"path": str(path), "sha256": sha256_file(path)} if path.is_file() else None


def query_set_files(directory: Path, split: str) -> dict[str, Path | None]:
    """The files a query set is read from: BEIR queries.jsonl + qrels/<split>.tsv (+ judgments_all.tsv), or a gen-pairs
    dir's <split>.json (queries and qrels in one file) + styles.json."""
    directory = Path(directory)
    if is_beir_dir(directory):
        return {"queries": directory / "queries.jsonl", "qrels": directory / "qrels" / f"{split}.tsv",
                "judgments_all": directory / "judgments_all.tsv"}
    return {"queries": directory / f"{split}.json", "qrels": directory / f"{split}.json", "styles": directory / "styles.json"}


def library_versions(packages: Sequence[str] = LIBRARIES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for package in packages:
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            out[package] = None
    return out


def _git(root: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):  # no git on the machine
        return None
    return proc.stdout if proc.returncode == 0 else None


def code_commit(root: Path = CODE_ROOT) -> dict[str, Any] | None:
    """{"commit", "dirty", "root"} of the git checkout the code runs from; None when it is not a checkout's root (an
    installed package, no git). `dirty`: `git status --porcelain` lists changed or untracked files."""
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != Path(root).resolve():
        return None
    head = _git(root, "rev-parse", "HEAD")
    status = _git(root, "status", "--porcelain")
    return {"commit": head.strip() if head else None, "dirty": None if status is None else bool(status.strip()), "root": str(root)}


def inputs_record(queries: Path, split: str, corpora: Sequence[Path], extra_judgments: Sequence[Path]) -> dict[str, Any]:
    """manifest.json's `inputs`: every file the report read, with its SHA-256."""
    files = query_set_files(queries, split)
    return {**{name: file_record(path) for name, path in files.items()},
            "extra_judgments": [file_record(p) for p in extra_judgments], "corpus": [file_record(p) for p in corpora]}
