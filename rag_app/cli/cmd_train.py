"""Training commands: `jobrag gen-pairs`, `jobrag finetune`, `jobrag bench train` (registered by rag_app.cli)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag_app.cli.common import LimitOpt, MapOpt, SourceOpt, cli_settings, console, kv_table, quiet_transformers
from rag_app.errors import ConfigError
from rag_app.settings import EMBEDDING_BACKENDS

ONNX_BACKENDS = tuple(b for b in EMBEDDING_BACKENDS if b != "torch")

EXPORT_RESERVE_S = 25.0  # finetune --export with a time budget: the ONNX export and its int8 quantisation after training


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

    settings = cli_settings(None, maps)
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
    latest = settings.home / "pairs" / "LATEST"  # `jobrag finetune` picks this up by default
    latest.parent.mkdir(parents=True, exist_ok=True)  # --out elsewhere on a fresh home: pairs/ does not exist yet
    latest.write_text(str(out.resolve()))
    console.print(kv_table(f"gen-pairs {spec} -> {out}", {"listings": len(read.listings), **{f"{k} pairs": v for k, v in counts.items()},
                                                           "rejected rows": len(read.rejects)}))


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
             eval_steps: Annotated[Optional[int], typer.Option(min=0, help="Evaluate/checkpoint every N steps, best kept (0 = per epoch).")] = None,
             seed: Annotated[Optional[int], typer.Option()] = None,
             time_budget: Annotated[Optional[str], typer.Option(help="Finish inside this wall-clock time (90s, 10m, 1h): the first steps are "
                                                                    "timed and the schedule sized to fit (default finetune.time_budget).")] = None,
             export: Annotated[Optional[str], typer.Option(help="Also write the ONNX encoder beside the weights: onnx-int8 | onnx.")] = None) -> None:
    """Fine-tune the embedder (SentenceTransformerTrainer); writes the model, its card and manifest.json."""
    from eval.benchmarks import beir_training_data, is_beir_dir, is_stsb_dir, load_beir, load_corpus, stsb_training_data
    from finetune import card
    from finetune.budget import parse_duration
    from finetune.pairs import load_training_data
    from finetune.train import fit

    started = time.perf_counter()
    overrides = {k: v for k, v in dict(base_model=base, loss=loss, epochs=epochs, batch_size=batch_size, max_seq_length=max_seq_length,
                                         learning_rate=learning_rate, matryoshka=matryoshka, eval_steps=eval_steps, seed=seed,
                                         time_budget=time_budget).items() if v is not None}
    settings = cli_settings(None, None, finetune=overrides)
    fs = settings.finetune
    budget_s = parse_duration(fs.time_budget) if fs.time_budget else None
    if export is not None and export not in ONNX_BACKENDS:
        raise ConfigError(f"unknown --export {export!r}; valid: {', '.join(ONNX_BACKENDS)}")
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
    quiet_transformers()
    run = fit(data, fs.base_model, out, fs, hard_negatives=negatives, extra_evals=extra, max_steps=max_steps, time_budget_s=budget_s,
              started=started, reserve_s=EXPORT_RESERVE_S if export else 0.0)
    if export:
        from rag_app.onnx_backend import export_model

        t = time.perf_counter()
        export_model(str(out), export)
        run.timings["export_s"] = time.perf_counter() - t
    manifest = card.write(out, run, data.name, pairs if pairs.is_dir() else None, data.meta, fs.model_dump(), time.perf_counter() - started)
    rows = {k: f"{run.before[k]:.4f} -> {run.after[k]:.4f}" for k in run.before if any(m in k for m in ("ndcg@10", "mrr@10", "recall@10", "spearman_cosine"))}
    console.print(kv_table(f"finetune {data.name} ({run.loss}) -> {out}", {**rows, **{k: f"{v:.1f}" for k, v in manifest["durations_s"].items()},
                                                                               "steps": run.steps, "train rows": run.train_rows}))
    if run.budget is not None:
        b = manifest["time_budget"]
        console.print(f"time budget {b['budget_s']:.0f}s: planned {b['planned_steps']} of {b['full_schedule_steps']} steps at "
                      f"{b['seconds_per_step']:.2f}s/step, ran {b['steps_run']}; took {b['actual_total_s']:.0f}s")
    console.print(f"use it: JOBRAG_EMBEDDING__MODEL={out} jobrag ingest   (or the `finetuned` profile)")
