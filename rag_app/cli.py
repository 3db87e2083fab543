"""`jobrag` command line (typer). The only rag_app module that imports several pipelines.

Every command loads the settings once and passes components down (constructor injection). A `JobragError` prints
as one line on stderr and exits non-zero, without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from rag_app import cli_eval, cli_train
from rag_app.cli_common import (
    EmbedderOpt,
    FilterOpt,
    LimitOpt,
    LLMOpt,
    MapOpt,
    RetrieverOpt,
    SourceOpt,
    TopKOpt,
    cli_settings,
    console,
    kv_table,
    quiet_transformers,
)
from rag_app.errors import ConfigError, JobragError
from rag_app.settings import Settings, load_settings, settings_files

app = typer.Typer(help="jobrag: RAG over job listings with a retriever you can fine-tune and prove better.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print speed figures measured on this machine.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(bench_app, name="bench")
app.command("gen-pairs")(cli_train.gen_pairs)
app.command("compare")(cli_eval.compare)
app.command("finetune")(cli_train.finetune)
bench_app.command("train")(cli_train.bench_train)

@app.callback()
def _root(log_level: Annotated[str, typer.Option("--log-level", envvar="JOBRAG_LOG_LEVEL", help="Python logging level.")] = "WARNING",
          profile: Annotated[Optional[str], typer.Option("--profile", help="Settings profile(s), comma-separated (sets JOBRAG_PROFILES).")] = None) -> None:
    if profile:
        os.environ["JOBRAG_PROFILES"] = profile
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def _components(settings: Settings) -> tuple[Any, Any]:
    from rag_app.embeddings import build_embedder
    from rag_app.store import Store

    quiet_transformers()
    return build_embedder(settings.embedding), Store.from_settings(settings)


@app.command()
def ingest(source: SourceOpt = None, embedder: EmbedderOpt = None, limit: LimitOpt = None, maps: MapOpt = None,
           prune: Annotated[bool, typer.Option("--prune", help="Remove listings no longer in the source.")] = False,
           progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
           as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False) -> None:
    """Clean, chunk, embed and upsert listings into the embedder's own Chroma collection (idempotent, resumable)."""
    from ingest.pipeline import Ingestor, read_listings

    settings = cli_settings(embedder, maps)
    read = read_listings(source or settings.ingest.source, settings, limit)  # bad paths/mappings fail before any model loads
    emb, store = _components(settings)
    summary = Ingestor(settings, emb, store).run(read, prune=prune, progress=progress)
    if as_json:
        print(summary.model_dump_json())
        return
    rows = {**summary.model_dump(include={"rows", "added", "updated", "unchanged", "rejected", "duplicates", "pruned", "chunks_written"}),
            "seconds": f"{summary.seconds:.1f}", "listings/s": f"{summary.listings_per_s:.1f}"}
    console.print(kv_table(f"ingest {summary.source} -> {summary.collection}", rows))
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

    settings = cli_settings(embedder, None, embedding={"batch_size": batch_size} if batch_size else {})
    report = run_ingest_bench(settings, source or settings.ingest.source, limit)
    figures = {k: f"{v:,.2f}" if isinstance(v, float) else v for k, v in report["figures"].items()}
    console.print(kv_table(f"bench ingest: {report['source']} ({report['model']})", figures))
    for line in report["notes"]:
        console.print(f"- {line}")


def _chat_engine(embedder: str | None, retriever: str | None, llm: str | None, filters: list[str] | None, top_k: int | None) -> Any:
    from rag_app.chat import ChatEngine
    from rag_app.filters import ListingFilters
    from rag_app.llms import start_llm
    from rag_app.retrievers import RetrieverFactory

    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {})
    try:
        parsed = ListingFilters.parse(filters) if filters else None  # None: retrieval.filters from the settings
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    quiet_transformers()
    from rag_app.store import Store

    factory = RetrieverFactory(settings, Store.from_settings(settings))
    spec = retriever or settings.retrieval.mode
    built = factory.build(spec, parsed, top_k)
    model, notice = start_llm(settings.llm, settings.dir("cache"))
    engine = ChatEngine(built, model, settings.llm, retriever_label=spec)
    return engine, notice


def _print_answer(answer: Any, streamed: bool) -> None:
    if not streamed:
        console.print(answer.text, markup=False, highlight=False)
    if answer.notice:
        console.print(f"[yellow]notice:[/yellow] {answer.notice}")
    table = Table(title="sources", title_justify="left")
    for col in ("#", "id", "listing", "score", "cited"):
        table.add_column(col)
    for s in answer.sources:
        table.add_row(str(s.rank), s.id, s.header(), f"{s.score:.3f}", "✓" if s.id in answer.cited_ids else "")
    console.print(table)


@app.command()
def ask(question: Annotated[str, typer.Argument(help="A question about jobs.")], embedder: EmbedderOpt = None, retriever: RetrieverOpt = None,
        llm: LLMOpt = None, filters: FilterOpt = None, top_k: TopKOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print the Answer record as JSON.")] = False) -> None:
    """Answer one question from the listings, citing them as \\[id]."""
    engine, notice = _chat_engine(embedder, retriever, llm, filters, top_k)
    answer, streamed = None, False
    for event in engine.stream(question):
        if event.kind == "token" and not as_json:
            print(event.data, end="", flush=True)
            streamed = True
        elif event.kind == "answer":
            answer = event.data
    if notice:
        answer.notice = f"{notice} {answer.notice or ''}".strip()
    if as_json:
        print(answer.model_dump_json(indent=2))
        return
    if streamed:
        print()
    _print_answer(answer, streamed)


@app.command()
def chat(embedder: EmbedderOpt = None, retriever: RetrieverOpt = None, llm: LLMOpt = None, filters: FilterOpt = None, top_k: TopKOpt = None) -> None:
    """Interactive chat with history (follow-ups like "which of those are remote?"). /reset clears, /quit leaves."""
    engine, notice = _chat_engine(embedder, retriever, llm, filters, top_k)
    if notice:
        console.print(f"[yellow]notice:[/yellow] {notice}")
    history: list[Any] = []
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if question in ("/quit", "/exit"):
            break
        if question == "/reset":
            history.clear()
            continue
        if not question:
            continue
        answer = None
        for event in engine.stream(question, history):
            if event.kind == "token":
                print(event.data, end="", flush=True)
            elif event.kind == "answer":
                answer = event.data
        print()
        _print_answer(answer, streamed=answer.timings.get("tokens", 0) > 0)
        history.append(answer)


@bench_app.command("query")
def bench_query(embedder: EmbedderOpt = None, queries: Annotated[Optional[str], typer.Option(help="BEIR dir or queries.jsonl (default: built-in job queries).")] = None,
                n: Annotated[int, typer.Option(help="Queries to time.")] = 50, llm: LLMOpt = None,
                generate: Annotated[int, typer.Option(help="Questions answered to time generation (0 = skip).")] = 3) -> None:
    """p50/p95 of query embedding, Chroma search and collapsing, vs numpy brute force; LLM first token and tokens/s."""
    from rag_app.bench import load_queries, run_generation_bench, run_query_bench
    from rag_app.retrievers import RetrieverFactory

    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {})
    quiet_transformers()
    from rag_app.store import Store

    factory = RetrieverFactory(settings, Store.from_settings(settings))
    texts = load_queries(queries, n)
    report = run_query_bench(factory.embedder(), factory.collection(), texts, settings.retrieval.candidate_k, settings.retrieval.top_k)
    figures = {k: f"{v:,.3f}" for k, v in report["figures"].items()}
    if generate and settings.llm.mode != "none":
        from rag_app.chat import ChatEngine
        from rag_app.llms import build_llm

        t = time.perf_counter()
        model = build_llm(settings.llm, settings.dir("cache"))
        figures["llm_load_s"] = f"{time.perf_counter() - t:.2f} ({getattr(model, 'loaded_from', settings.llm.model)})"
        engine = ChatEngine(factory.build(), model, settings.llm)
        figures |= {k: f"{v:,.1f}" for k, v in run_generation_bench(engine, texts[:generate]).items()}
    console.print(kv_table(f"bench query: {report['listings']} listings, {report['chunks']} chunks, {report['queries']} queries", figures))


@app.command()
def ui(host: Annotated[str, typer.Option(help="Interface to serve on (loopback by default).")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="Port.")] = 8501) -> None:
    """Serve the Streamlit UI (chat, A/B, compare reports) at http://HOST:PORT."""
    import importlib.util
    import subprocess
    from pathlib import Path

    if importlib.util.find_spec("streamlit") is None:
        raise ConfigError("the UI needs streamlit: pip install 'jobrag[ui]'")
    spec = importlib.util.find_spec("streamlit_app")
    script = Path(spec.origin) if spec and spec.origin else Path(__file__).resolve().parents[1] / "streamlit_app.py"
    if not script.exists():
        raise ConfigError(f"{script} not found: install jobrag from its source tree (pip install -e '.[ui]')")
    console.print(f"jobrag UI on http://{host}:{port}  (Ctrl+C stops it)")
    sys.stdout.flush()
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.address", host, "--server.port", str(port),
           "--server.headless", "true", "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
           "--client.toolbarMode", "minimal"]
    raise SystemExit(subprocess.call(cmd))


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
