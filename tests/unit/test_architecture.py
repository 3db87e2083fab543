"""Arrows run one way: settings -> components -> pipelines -> CLI/UI (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIPELINES = {"ingest", "finetune", "eval"}
TOP = {"rag_app.cli", "rag_app.cli_train", "rag_app.cli_eval", "rag_app.cli_common", "streamlit_app"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in ("rag_app", *PIPELINES):
        for path in (REPO / pkg).rglob("*.py"):
            found[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    if (REPO / "streamlit_app.py").exists():
        found["streamlit_app"] = REPO / "streamlit_app.py"
    return found


def test_no_wrong_way_imports() -> None:
    wrong = []
    for name, path in _modules().items():
        if name in TOP:
            continue
        top = name.split(".")[0]
        for imported in _imports(path):
            root = imported.split(".")[0]
            if imported in TOP:
                wrong.append(f"{name} imports the CLI/UI ({imported})")
            elif top == "rag_app" and root in PIPELINES:
                wrong.append(f"component {name} imports pipeline {imported}")
            elif top in PIPELINES and root in PIPELINES and root != top:
                wrong.append(f"pipeline {name} imports another pipeline ({imported}); pass records instead")
    assert wrong == []


def test_the_checker_sees_a_wrong_way_arrow(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from ingest.pipeline import Ingestor\nimport rag_app.cli\n")
    assert {"ingest.pipeline", "rag_app.cli"} <= _imports(bad)
