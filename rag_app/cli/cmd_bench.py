"""Benchmarks that print speed figures measured on this machine: `jobrag bench ingest|query|train`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

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
    if generate and settings.llm.writes:
        from rag_app.chat import ChatEngine
        from rag_app.llms import build_llm

        t = time.perf_counter()
        model = build_llm(settings.llm, settings.dir("cache"))
        figures["llm_load_s"] = f"{time.perf_counter() - t:.2f} ({getattr(model, 'loaded_from', model.metadata.model_name)})"
        engine = ChatEngine(factory.build(), model, settings.llm)
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


def bench_serve(url: Annotated[Optional[str], typer.Option(help="Target a running API (default: start `jobrag serve` on a free loopback port).")] = None,
                clients: Annotated[str, typer.Option(help="Concurrency levels, comma-separated.")] = "1,8,32",
                duration: Annotated[float, typer.Option(min=1, help="Seconds per level.")] = 20.0,
                max_requests: Annotated[int, typer.Option(min=1, help="Request budget per level.")] = 5000,
                endpoints: Annotated[str, typer.Option(help="search, ask or both (comma-separated).")] = "search,ask",
                llm: LLMOpt = None, retriever: Annotated[Optional[str], typer.Option(help="Retriever spec sent with each request.")] = None,
                llm_clients: Annotated[str, typer.Option(help="Levels for /v1/ask when a model writes the answers (kept low).")] = "1,2",
                timeout: Annotated[float, typer.Option(min=1, help="Per-request timeout, seconds (a timed-out request counts as lost).")] = 60.0,
                queries: Annotated[Optional[str], typer.Option(help="BEIR dir or queries.jsonl (default: built-in job queries).")] = None,
                workers: Annotated[int, typer.Option(min=1, help="Worker processes of the `jobrag serve` it starts (over 1: store.mode "
                                                                 "http, a running Chroma server).")] = 1) -> None:
    """Load-test the HTTP API: throughput, p50/p95/p99, errors, lost and rejected requests per endpoint and concurrency."""
    import json
    import os
    import tempfile

    from eval.latency import load_queries
    from rag_app.server.bench import run_bench, serve_subprocess, wait_ready

    settings = cli_settings(None, None)
    levels = [int(c) for c in clients.split(",") if c.strip()]
    headers = {"Authorization": f"Bearer {settings.server.api_key.get_secret_value()}"} if settings.server.api_key else {}
    texts = load_queries(queries, 200)
    figures: list[dict] = []

    def show(result: Any) -> None:
        figures.append(result.row())
        console.print(f"{result.endpoint:>6} x{result.clients:<3} {result.seconds:5.1f}s  ok {result.ok:5d}  {result.throughput:7.1f} req/s  "
                      f"p50 {result.p50_ms:7.1f}  p95 {result.p95_ms:7.1f}  p99 {result.p99_ms:7.1f} ms  errors {result.errors}  "
                      f"lost {result.lost}  rejected {result.rejected}"
                      + (f"  first token p50 {result.first_token_p50_ms:.0f} ms" if result.first_token_p50_ms is not None else ""),
                      markup=False, highlight=False)

    def run(base: str) -> None:
        ready = wait_ready(base, headers, 600)
        writes = ready.get("llm", "none") != "none"
        chosen = {e.strip(): levels for e in endpoints.split(",") if e.strip()}
        if "ask" in chosen and writes:  # a model writes: generation is the bottleneck by design, keep the load low
            chosen["ask"] = [int(c) for c in llm_clients.split(",") if c.strip()]
        console.print(f"bench serve: {base} (embedder {ready.get('embedder')}, retriever {retriever or ready.get('retriever')}, "
                      f"llm {ready.get('llm')}), {duration:g}s or {max_requests} requests per level")
        run_bench(base, chosen, texts, duration, max_requests, timeout, headers, retriever, on_result=show)

    if url:
        run(url.rstrip("/"))
    else:
        env = {**os.environ, **({"JOBRAG_LLM__MODE": llm} if llm else {})}
        args = ["--workers", str(workers)]
        with tempfile.TemporaryDirectory(prefix="jobrag-bench-serve-") as tmp, serve_subprocess(env, args, Path(tmp) / "serve.log") as served:
            run(served.url)
    out = settings.dir("reports") / "bench-serve.json"
    out.write_text(json.dumps({"levels": figures, "duration_s": duration, "max_requests": max_requests, "workers": None if url else workers},
                              indent=2))
    console.print(f"figures: {out}")
