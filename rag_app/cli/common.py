"""Helpers shared by the CLI modules: console, option types, settings overrides, tables."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rag_app.errors import ConfigError
from rag_app.filters import ListingFilters
from rag_app.settings import Settings, load_settings

console = Console(width=max(100, Console().width))

SourceOpt = Annotated[Optional[str], typer.Option("--source", help="'sample', a CSV/JSONL/Parquet path, or hub:NAME[@split].")]
EmbedderOpt = Annotated[Optional[str], typer.Option("--embedder", help="Embedding model: hub name or local dir (overrides embedding.model).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Stop after this many accepted listings.")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping FIELD=COLUMN, repeatable (e.g. --map description='Job Description').")]

RetrieverOpt = Annotated[Optional[str], typer.Option("--retriever", help="dense[:MODEL] | bm25[:MODEL] | hybrid[:MODEL] (default retrieval.mode).")]
LLMOpt = Annotated[Optional[str], typer.Option("--llm", help="local | openai | none (overrides llm.mode).")]
FilterOpt = Annotated[Optional[list[str]], typer.Option("--filter", help="KEY=VALUE, repeatable: location, workplace, employment, min_pay, currency, level.")]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", min=1, help="Listings to retrieve (overrides retrieval.top_k).")]


def cli_settings(embedder: str | None = None, maps: list[str] | None = None, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, Any] = {k: v for k, v in sections.items() if v}
    if embedder:
        overrides.setdefault("embedding", {})["model"] = embedder
    if maps:
        pairs = [m.split("=", 1) for m in maps]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            raise ConfigError(f"--map takes FIELD=COLUMN, got {maps}")
        overrides.setdefault("ingest", {})["column_map"] = dict(pairs)
    return load_settings(**overrides)

def parse_filters(items: list[str] | None) -> ListingFilters | None:
    """`--filter KEY=VALUE` flags, or None when none were given (then retrieval.filters from the settings apply)."""
    if not items:
        return None
    try:
        return ListingFilters.parse(items)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None




def kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", min_width=min(len(title) + 2, 120))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table



def quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
