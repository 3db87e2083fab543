"""`jobrag` command line (typer). The only rag_app module that imports several pipelines.

Every command loads the settings once and passes components down (constructor injection). A `JobragError` prints
as one line on stderr and exits non-zero, without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from rag_app.errors import ConfigError, JobragError
from rag_app.settings import Settings, load_settings, settings_files

app = typer.Typer(help="jobrag: RAG over job listings with a retriever you can fine-tune and prove better.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print speed figures measured on this machine.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(bench_app, name="bench")
console = Console(width=max(100, Console().width))

SourceOpt = Annotated[Optional[str], typer.Option("--source", help="'sample', a CSV/JSONL/Parquet path, or hub:NAME[@split].")]
EmbedderOpt = Annotated[Optional[str], typer.Option("--embedder", help="Embedding model: hub name or local dir (overrides embedding.model).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Stop after this many accepted listings.")]
MapOpt = Annotated[Optional[list[str]], typer.Option("--map", help="Column mapping FIELD=COLUMN, repeatable (e.g. --map description='Job Description').")]


@app.callback()
def _root(log_level: Annotated[str, typer.Option("--log-level", envvar="JOBRAG_LOG_LEVEL", help="Python logging level.")] = "WARNING",
          profile: Annotated[Optional[str], typer.Option("--profile", help="Settings profile(s), comma-separated (sets JOBRAG_PROFILES).")] = None) -> None:
    if profile:
        os.environ["JOBRAG_PROFILES"] = profile
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _settings(embedder: str | None = None, maps: list[str] | None = None, **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, Any] = {k: v for k, v in sections.items() if v}
    if embedder:
        overrides.setdefault("embedding", {})["model"] = embedder
    if maps:
        pairs = [m.split("=", 1) for m in maps]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            raise ConfigError(f"--map takes FIELD=COLUMN, got {maps}")
        overrides.setdefault("ingest", {})["column_map"] = dict(pairs)
    return load_settings(**overrides)


def _components(settings: Settings) -> tuple[Any, Any]:
    from rag_app.embeddings import build_embedder
    from rag_app.store import Store

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    return build_embedder(settings.embedding), Store.from_settings(settings)


@app.command()
def ingest(source: SourceOpt = None, embedder: EmbedderOpt = None, limit: LimitOpt = None, maps: MapOpt = None,
           prune: Annotated[bool, typer.Option("--prune", help="Remove listings no longer in the source.")] = False,
           progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
           as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """Clean, chunk, embed and upsert listings into the embedder's own Chroma collection (idempotent, resumable)."""
    from ingest.pipeline import Ingestor, read_listings

    settings = _settings(embedder, maps)
    read = read_listings(source or settings.ingest.source, settings, limit)  # bad paths/mappings fail before any model loads
    emb, store = _components(settings)
    summary = Ingestor(settings, emb, store).run(read, prune=prune, progress=progress)
    if as_json:
        print(summary.model_dump_json())
        return
    rows = {**summary.model_dump(include={"rows", "added", "updated", "unchanged", "rejected", "duplicates", "pruned", "chunks_written"}),
            "seconds": f"{summary.seconds:.1f}", "listings/s": f"{summary.listings_per_s:.1f}"}
    console.print(_kv_table(f"ingest {summary.source} -> {summary.collection}", rows))
    if summary.rejected:
        console.print(f"{summary.rejected} rejected row(s), reasons in {summary.rejects_path}")


@config_app.command("show")
def config_show() -> None:
    """Print the effective settings (secrets masked) and the files they came from."""
    import yaml

    settings = load_settings()
    files = [str(p) for p in settings_files()] or ["(no settings files; defaults and env only)"]
    console.print(f"# from: {', '.join(files)}; env JOBRAG_* overrides; profiles: {os.environ.get('JOBRAG_PROFILES') or 'none'}")
    console.print(yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False), markup=False)


@bench_app.command("ingest")
def bench_ingest(source: SourceOpt = None, embedder: EmbedderOpt = None, limit: LimitOpt = None,
                 batch_size: Annotated[Optional[int], typer.Option(help="Encoder batch size (overrides embedding.batch_size).")] = None) -> None:
    """Ingest into a throwaway store and print listings/s, chunks/s, tokens/s and % of a measured matmul peak."""
    from ingest.bench import run_ingest_bench

    settings = _settings(embedder, None, embedding={"batch_size": batch_size} if batch_size else {})
    report = run_ingest_bench(settings, source or settings.ingest.source, limit)
    figures = {k: f"{v:,.2f}" if isinstance(v, float) else v for k, v in report["figures"].items()}
    console.print(_kv_table(f"bench ingest: {report['source']} ({report['model']})", figures))
    for line in report["notes"]:
        console.print(f"- {line}")


def _kv_table(title: str, rows: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in rows.items():
        table.add_row(key, str(value))
    return table


def main() -> None:
    try:
        app()
    except JobragError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line, never wrapped
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
