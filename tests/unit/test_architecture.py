"""Arrows run one way: settings -> components -> pipelines -> CLI/UI/server (see ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PIPELINES = {"ingest", "finetune", "eval"}
TOP_FLOOR = ("rag_app.cli", "rag_app.ui", "rag_app.server", "streamlit_app")  # prefixes: packages and everything in them


def is_top(module: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in TOP_FLOOR)


def imports_of(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def wrong_way(module: str, imported: set[str]) -> list[str]:
    """The rule: what `module` may not import."""
    if is_top(module):
        return []
    wrong = []
    floor = module.split(".")[0]
    for name in sorted(imported):
        root = name.split(".")[0]
        if is_top(name):
            wrong.append(f"{module} imports the top floor ({name})")
        elif floor == "rag_app" and root in PIPELINES:
            wrong.append(f"component {module} imports pipeline {name}")
        elif floor in PIPELINES and root in PIPELINES and root != floor:
            wrong.append(f"pipeline {module} imports another pipeline ({name}); pass records instead")
    return wrong


def modules() -> dict[str, Path]:
    found = {}
    for pkg in ("rag_app", *PIPELINES):
        for path in (REPO / pkg).rglob("*.py"):
            found[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    if (REPO / "streamlit_app.py").exists():
        found["streamlit_app"] = REPO / "streamlit_app.py"
    return found


def test_no_wrong_way_imports() -> None:
    wrong = [w for name, path in modules().items() for w in wrong_way(name, imports_of(path.read_text(encoding="utf-8")))]
    assert wrong == []


def test_the_rule_catches_wrong_way_arrows() -> None:
    bad = imports_of("from ingest.pipeline import Ingestor\nimport rag_app.cli\nfrom rag_app.ui.state import sidebar\nimport eval.report\n")
    assert wrong_way("rag_app.store", bad) == ["component rag_app.store imports pipeline eval.report",
                                              "component rag_app.store imports pipeline ingest.pipeline",
                                              "rag_app.store imports the top floor (rag_app.cli)",
                                              "rag_app.store imports the top floor (rag_app.ui.state)"]
    assert wrong_way("finetune.train", {"ingest.pipeline", "finetune.pairs", "rag_app.records"}) == [
        "pipeline finetune.train imports another pipeline (ingest.pipeline); pass records instead"]
    assert wrong_way("eval.report", {"rag_app.cli.common"}) == ["eval.report imports the top floor (rag_app.cli.common)"]
    assert wrong_way("rag_app.cli.cmd_compare", {"eval.report", "ingest.pipeline"}) == []  # the top floor may import pipelines
    assert is_top("rag_app.cli") and is_top("rag_app.cli.cmd_train") and not is_top("rag_app.client")


def test_every_module_is_seen() -> None:
    found = modules()
    assert {"rag_app.cli", "rag_app.cli.cmd_train", "rag_app.settings", "ingest.pipeline", "eval.report", "streamlit_app"} <= set(found)
