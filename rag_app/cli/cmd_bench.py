"""Benchmarks that print speed figures measured on this machine: `jobrag bench ingest|query|train`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag_app.cli.common import EmbedderOpt, LimitOpt, LLMOpt, SourceOpt, cli_settings, console, kv_table, quiet_transformers

BackendsOpt = Annotated[Optional[str], typer.Option("--backends", help="Compare embedding backends side by side, e.g. torch,onnx-int8 "
                                                                      "(alternating, same inputs): speed ratio, memory.")]


def bench_ingest(source: SourceOpt = None, embedder: EmbedderOpt = None, limit: LimitOpt = None,
                 batch_size: Annotated[Optional[int], typer.Option(help="Encoder batch size (overrides embedding.batch_size).")] = None,
                 backends: BackendsOpt = None) -> None:
    """Ingest into a throwaway store and print listings/s, chunks/s, tokens/s and % of a measured matmul peak."""
    from ingest.bench import run_backend_bench, run_ingest_bench
    from rag_app.backend_bench import parse_backends

    settings = cli_settings(embedder, None, embedding={"batch_size": batch_size} if batch_size else {})
    quiet_transformers()
    if backends:
        report = run_backend_bench(settings, source or settings.ingest.source, limit, parse_backends(backends))
    else:
        report = run_ingest_bench(settings, source or settings.ingest.source, limit)
    figures = {k: f"{v:,.2f}" if isinstance(v, float) else v for k, v in report["figures"].items()}
    console.print(kv_table(f"bench ingest: {report['source']} ({report['model']})", figures))
    for line in report["notes"]:
        console.print(f"- {line}")


def bench_query(embedder: EmbedderOpt = None, queries: Annotated[Optional[str], typer.Option(help="BEIR dir or queries.jsonl (default: built-in job queries).")] = None,
                n: Annotated[int, typer.Option(help="Queries to time.")] = 50, llm: LLMOpt = None,
                generate: Annotated[int, typer.Option(help="Questions answered to time generation (0 = skip).")] = 3,
                backends: BackendsOpt = None) -> None:
    """p50/p95 of query embedding, Chroma search and collapsing, vs numpy brute force; LLM first token and tokens/s."""
    from eval.latency import load_queries, run_backend_query_bench, run_generation_bench, run_query_bench
    from rag_app.backend_bench import parse_backends
    from rag_app.retrievers import RetrieverFactory

    settings = cli_settings(embedder, None, llm={"mode": llm} if llm else {})
    quiet_transformers()
    texts = load_queries(queries, n)
    if backends:  # query embedding only, no collection needed
        report = run_backend_query_bench(settings.embedding, parse_backends(backends), texts)
        figures = {k: f"{v:,.3f}" if isinstance(v, float) else v for k, v in report["figures"].items()}
        console.print(kv_table(f"bench query --backends {backends}: {report['queries']} queries", figures))
        return
    factory = RetrieverFactory.from_settings(settings)
    report = run_query_bench(factory.embedder(), factory.collection(), texts, settings.retrieval.candidate_k, settings.retrieval.top_k)
    figures = {k: f"{v:,.3f}" for k, v in report["figures"].items()}
    if generate and settings.llm.mode != "none":
        from rag_app.chat import ChatEngine
        from rag_app.llms import build_llm
        from rag_app.retriever_choice import usable_spec

        t = time.perf_counter()
        model = build_llm(settings.llm, settings.dir("cache"))
        figures["llm_load_s"] = f"{time.perf_counter() - t:.2f} ({getattr(model, 'loaded_from', model.metadata.model_name)})"
        engine = ChatEngine(factory.build(usable_spec(factory)), model, settings.llm)
        figures |= {k: f"{v:,.1f}" for k, v in run_generation_bench(engine, texts[:generate]).items()}
    console.print(kv_table(f"bench query: {report['listings']} listings, {report['chunks']} chunks, {report['queries']} queries", figures))


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
    settings = cli_settings(None, None, finetune=overrides)
    quiet_transformers()
    with tempfile.TemporaryDirectory(prefix="jobrag-bench-train-") as tmp:
        if pairs is None:
            read = read_listings("sample", settings)
            gen = TemplateGenerator(read.listings, settings.finetune.queries_per_listing, settings.finetune.seed)
            build_dataset(read.listings, {x.id: gen(x) for x in read.listings}, Path(tmp), {"generator": "template"}, settings.finetune.seed)
            pairs = Path(tmp)
        run = fit(load_training_data(pairs), settings.finetune.base_model, None, settings.finetune, hard_negatives=negatives,
                  max_steps=steps, evaluate=False)
    fs = settings.finetune
    train_s = run.timings["train_s"]
    console.print(kv_table(f"bench train: {fs.base_model}, {fs.loss}, batch {fs.batch_size}, max_seq_length {fs.max_seq_length}", {
        "steps": run.steps, "seconds_per_step": f"{train_s / run.steps:.2f}", "rows_per_s": f"{run.steps * fs.batch_size / train_s:.1f}",
        "mining_s": f"{run.timings.get('mining_s', 0):.1f}", "peak_rss_mb": f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}",
        "columns": "anchor, positive, negative" if run.hard_negatives else "anchor, positive"}))
