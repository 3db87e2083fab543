"""`jobrag` command line (typer): the top floor, the only place that imports several pipelines.

Commands live in one module per group (`cmd_*.py`) and register on the app below. Every command loads the settings
once and passes components down (constructor injection). A `JobragError` is mapped to its exit code inside the app
(one `error: …` line on stderr, no traceback), so error paths behave the same in-process (`CliRunner`) and from a shell.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from rag_app.cli import cmd_bench, cmd_chat, cmd_compare, cmd_config, cmd_export, cmd_ingest, cmd_serve, cmd_train
from rag_app.errors import JobragError


class JobragGroup(TyperGroup):
    """Runs a command and turns a `JobragError` into its exit code; Ctrl+C exits with 130."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except JobragError as exc:
            typer.echo(f"error: {exc}", err=True)  # one line, never wrapped
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


app = typer.Typer(cls=JobragGroup, help="jobrag: RAG over job listings with a retriever you can fine-tune and prove better.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print speed figures measured on this machine.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(bench_app, name="bench")

app.command("ingest")(cmd_ingest.ingest)
app.command("ask")(cmd_chat.ask)
app.command("chat")(cmd_chat.chat)
app.command("ui")(cmd_chat.ui)
app.command("serve")(cmd_serve.serve)
app.command("gen-pairs")(cmd_train.gen_pairs)
app.command("finetune")(cmd_train.finetune)
app.command("train-reranker")(cmd_train.train_reranker)
app.command("compare")(cmd_compare.compare)
app.command("export")(cmd_export.export)
config_app.command("show")(cmd_config.show)
bench_app.command("ingest")(cmd_bench.bench_ingest)
bench_app.command("query")(cmd_bench.bench_query)
bench_app.command("train")(cmd_bench.bench_train)
bench_app.command("serve")(cmd_bench.bench_serve)


@app.callback()
def _root(log_level: Annotated[str, typer.Option("--log-level", envvar="JOBRAG_LOG_LEVEL", help="Python logging level.")] = "WARNING",
          profile: Annotated[Optional[str], typer.Option("--profile", help="Settings profile(s), comma-separated (sets JOBRAG_PROFILES).")] = None) -> None:
    if profile:
        os.environ["JOBRAG_PROFILES"] = profile
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def main() -> None:
    app()
