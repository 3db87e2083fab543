"""`jobrag` command line (typer). The only rag_app module that imports several pipelines.

Every command loads the settings once and passes components down (constructor injection). A `JobragError` prints
as one line on stderr and exits non-zero, without a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
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

    _quiet_transformers()
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


RetrieverOpt = Annotated[Optional[str], typer.Option("--retriever", help="dense[:MODEL] | bm25[:MODEL] | hybrid[:MODEL] (default retrieval.mode).")]
LLMOpt = Annotated[Optional[str], typer.Option("--llm", help="local | openai | none (overrides llm.mode).")]
FilterOpt = Annotated[Optional[list[str]], typer.Option("--filter", help="KEY=VALUE, repeatable: location, workplace, employment, min_pay, currency, level.")]
TopKOpt = Annotated[Optional[int], typer.Option("--top-k", min=1, help="Listings to retrieve (overrides retrieval.top_k).")]


def _chat_engine(embedder: str | None, retriever: str | None, llm: str | None, filters: list[str] | None, top_k: int | None) -> Any:
    from rag_app.chat import ChatEngine
    from rag_app.filters import ListingFilters
    from rag_app.llms import build_llm
    from rag_app.retrievers import RetrieverFactory

    settings = _settings(embedder, None, llm={"mode": llm} if llm else {})
    try:
        parsed = ListingFilters.parse(filters or [])
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _quiet_transformers()
    from rag_app.store import Store

    factory = RetrieverFactory(settings, Store.from_settings(settings))
    spec = retriever or settings.retrieval.mode
    built = factory.build(spec, parsed, top_k)
    notice = None
    try:
        model = build_llm(settings.llm, settings.dir("cache"))
    except Exception as exc:  # a broken LLM never blocks search: degrade to sources
        model, notice = None, f"LLM {settings.llm.mode!r} could not start ({exc}); showing sources only."
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
    """Answer one question from the listings, citing them as [id]."""
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

    settings = _settings(embedder, None, llm={"mode": llm} if llm else {})
    _quiet_transformers()
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
    console.print(_kv_table(f"bench query: {report['listings']} listings, {report['chunks']} chunks, {report['queries']} queries", figures))


@app.command("gen-pairs")
def gen_pairs(source: SourceOpt = None, limit: LimitOpt = None, maps: MapOpt = None,
              generator: Annotated[str, typer.Option(help="template (offline, deterministic) | llm (the configured OpenAI-compatible LLM).")] = "template",
              out: Annotated[Optional[Path], typer.Option(help="Dataset directory (default <home>/pairs/<source name>).")] = None,
              queries_per_listing: Annotated[Optional[int], typer.Option(help="Queries per listing (default finetune.queries_per_listing).")] = None,
              seed: Annotated[Optional[int], typer.Option(help="Seed (default finetune.seed).")] = None,
              concurrency: Annotated[int, typer.Option(help="llm: parallel requests.")] = 4,
              retries: Annotated[int, typer.Option(help="llm: retries per listing.")] = 3) -> None:
    """Generate (query, listing) pairs and write a leakage-safe train/val/test dataset dir."""
    from finetune.pairs import LLMGenerator, TemplateGenerator, build_dataset, source_hash
    from ingest.pipeline import read_listings

    settings = _settings(None, maps)
    spec = source or settings.ingest.source
    read = read_listings(spec, settings, limit)
    k = queries_per_listing or settings.finetune.queries_per_listing
    seed = settings.finetune.seed if seed is None else seed
    out = out or settings.home / "pairs" / Path(spec.replace("hub:", "")).stem
    meta: dict[str, Any] = {"generator": generator, "source": spec, "source_hash": source_hash(read.listings), "queries_per_listing": k}
    if generator == "template":
        gen = TemplateGenerator(read.listings, k, seed)
        queries = {x.id: gen(x) for x in read.listings}
    elif generator == "llm":
        from rag_app.llms import build_llm

        if settings.llm.mode != "openai":
            raise ConfigError("--generator llm uses the OpenAI-compatible LLM: set llm.mode=openai and llm.api_base (the local 135M model cannot write queries)")
        llm = build_llm(settings.llm, settings.dir("cache"))
        gen_llm = LLMGenerator(lambda prompt: llm.complete(prompt).text, out / "llm-checkpoint.jsonl", n=k,
                               prompt=settings.finetune.llm_prompt, concurrency=concurrency, retries=retries)
        done = gen_llm.run(read.listings)
        queries = {lid: [(q, "llm") for q in qs] for lid, qs in done.items()}
        meta |= {"llm_model": settings.llm.model, "llm_api_base": settings.llm.api_base, "prompt": settings.finetune.llm_prompt}
    else:
        raise ConfigError(f"unknown generator {generator!r}; valid: template, llm")
    counts = build_dataset(read.listings, queries, out, meta, seed)
    (settings.home / "pairs" / "LATEST").write_text(str(out.resolve()))  # `jobrag finetune` picks this up by default
    console.print(_kv_table(f"gen-pairs {spec} -> {out}", {"listings": len(read.listings), **{f"{k} pairs": v for k, v in counts.items()},
                                                           "rejected rows": len(read.rejects)}))


@app.command()
def finetune(pairs: Annotated[Optional[Path], typer.Option(help="A gen-pairs dir, a BEIR dir (train qrels) or an STS-B dir.")] = None,
             base: Annotated[Optional[str], typer.Option(help="Base model (default finetune.base_model).")] = None,
             loss: Annotated[Optional[str], typer.Option(help="mnrl | cached-mnrl | cosent | contrastive | triplet.")] = None,
             epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
             out: Annotated[Optional[Path], typer.Option(help="Model dir (default <home>/models/finetuned).")] = None,
             batch_size: Annotated[Optional[int], typer.Option(min=2)] = None,
             max_seq_length: Annotated[Optional[int], typer.Option(min=16)] = None,
             learning_rate: Annotated[Optional[float], typer.Option()] = None,
             matryoshka: Annotated[Optional[bool], typer.Option("--matryoshka/--no-matryoshka")] = None,
             negatives: Annotated[bool, typer.Option("--negatives/--no-negatives", help="Mine hard negatives with the base model.")] = True,
             eval_queries: Annotated[Optional[Path], typer.Option("--eval", help="Extra BEIR query dir evaluated before/after (e.g. dev_a).")] = None,
             eval_corpus: Annotated[Optional[Path], typer.Option(help="Corpus for --eval (jobs JSONL or BEIR corpus).")] = None,
             max_steps: Annotated[int, typer.Option(help="Stop after N steps (smoke runs); -1 = full epochs.")] = -1,
             seed: Annotated[Optional[int], typer.Option()] = None) -> None:
    """Fine-tune the embedder (SentenceTransformerTrainer); writes the model, its card and manifest.json."""
    from eval.benchmarks import beir_training_data, is_beir_dir, is_stsb_dir, load_beir, load_corpus, stsb_training_data
    from finetune import card
    from finetune.pairs import load_training_data
    from finetune.train import fit

    overrides = {k: v for k, v in dict(base_model=base, loss=loss, epochs=epochs, batch_size=batch_size, max_seq_length=max_seq_length,
                                         learning_rate=learning_rate, matryoshka=matryoshka, seed=seed).items() if v is not None}
    settings = _settings(None, None, finetune=overrides)
    fs = settings.finetune
    latest = settings.home / "pairs" / "LATEST"
    pairs = pairs or (Path(latest.read_text().strip()) if latest.exists() else settings.home / "pairs" / "sample")
    if is_stsb_dir(pairs):
        data = stsb_training_data(pairs)
        fs = fs.model_copy(update={"loss": loss or "cosent"})
    elif is_beir_dir(pairs):
        data = beir_training_data(pairs, seed=fs.seed)
    elif (pairs / "train.json").exists():
        data = load_training_data(pairs)
    else:
        raise ConfigError(f"{pairs} is not a gen-pairs dir (train.json), a BEIR dir (queries.jsonl + qrels/) or an STS-B dir (train.csv, dev.csv)")
    extra = {}
    if data.test is not None:
        extra["test"] = data.model_copy(update={"val": data.test})
    if eval_queries:
        extra[Path(eval_queries).name] = load_beir(eval_queries, "test", load_corpus(eval_corpus) if eval_corpus else None)
    out = out or settings.home / "models" / "finetuned"
    _quiet_transformers()
    started = time.perf_counter()
    run = fit(data, fs.base_model, out, fs, hard_negatives=negatives, extra_evals=extra, max_steps=max_steps)
    manifest = card.write(out, run, data.name, pairs if pairs.is_dir() else None, data.meta, fs.model_dump(), time.perf_counter() - started)
    rows = {k: f"{run['before'][k]:.4f} -> {run['after'][k]:.4f}" for k in run["before"] if any(m in k for m in ("ndcg@10", "mrr@10", "recall@10", "spearman_cosine"))}
    console.print(_kv_table(f"finetune {data.name} ({run['loss']}) -> {out}", {**rows, **{k: f"{v:.1f}" for k, v in manifest["durations_s"].items()},
                                                                               "steps": run["steps"], "train rows": run["train_rows"]}))
    console.print(f"use it: JOBRAG_EMBEDDING__MODEL={out} jobrag ingest   (or the `finetuned` profile)")


@bench_app.command("train")
def bench_train(pairs: Annotated[Optional[Path], typer.Option(help="gen-pairs dir (default: generate from the sample into a temp dir).")] = None,
                steps: Annotated[int, typer.Option(min=1, help="Training steps to time.")] = 20,
                batch_size: Annotated[Optional[int], typer.Option(min=2)] = None,
                max_seq_length: Annotated[Optional[int], typer.Option(min=16)] = None,
                loss: Annotated[Optional[str], typer.Option()] = None,
                negatives: Annotated[bool, typer.Option("--negatives/--no-negatives")] = True) -> None:
    """Time N fine-tuning steps (no evaluation): s/step, pairs/s, peak memory."""
    import resource
    import tempfile

    from finetune.pairs import TemplateGenerator, build_dataset, load_training_data
    from finetune.train import fit
    from ingest.pipeline import read_listings

    overrides = {k: v for k, v in dict(batch_size=batch_size, max_seq_length=max_seq_length, loss=loss).items() if v is not None}
    settings = _settings(None, None, finetune=overrides)
    _quiet_transformers()
    with tempfile.TemporaryDirectory(prefix="jobrag-bench-train-") as tmp:
        if pairs is None:
            read = read_listings("sample", settings)
            gen = TemplateGenerator(read.listings, settings.finetune.queries_per_listing, settings.finetune.seed)
            build_dataset(read.listings, {x.id: gen(x) for x in read.listings}, Path(tmp), {"generator": "template"}, settings.finetune.seed)
            pairs = Path(tmp)
        run = fit(load_training_data(pairs), settings.finetune.base_model, None, settings.finetune, hard_negatives=negatives,
                  max_steps=steps, evaluate=False)
    fs = settings.finetune
    train_s = run["timings"]["train_s"]
    console.print(_kv_table(f"bench train: {fs.base_model}, {fs.loss}, batch {fs.batch_size}, max_seq_length {fs.max_seq_length}", {
        "steps": run["steps"], "seconds_per_step": f"{train_s / run['steps']:.2f}", "rows_per_s": f"{run['steps'] * fs.batch_size / train_s:.1f}",
        "mining_s": f"{run['timings'].get('mining_s', 0):.1f}", "peak_rss_mb": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}",
        "columns": "anchor, positive, negative" if run["hard_negatives"] else "anchor, positive"}))


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


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
