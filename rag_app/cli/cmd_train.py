"""Training commands: `jobrag gen-pairs`, `jobrag finetune`, `jobrag train-reranker`, `jobrag bench train` (registered by rag_app.cli)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag_app.cli.common import LimitOpt, MapOpt, SourceOpt, cli_settings, console, kv_table, quiet_transformers
from rag_app.errors import ConfigError
from rag_app.records import IRSplit, TrainingData
from rag_app.settings import EMBEDDING_BACKENDS

ONNX_BACKENDS = tuple(b for b in EMBEDDING_BACKENDS if b != "torch")

EXPORT_RESERVE_S = 25.0  # finetune --export with a time budget: the ONNX export and its int8 quantisation after training


def gen_pairs(source: SourceOpt = None, limit: LimitOpt = None, maps: MapOpt = None,
              generator: Annotated[str, typer.Option(help="template (offline, deterministic) | llm (the configured OpenAI-compatible LLM).")] = "template",
              out: Annotated[Optional[Path], typer.Option(help="Dataset directory (default <home>/pairs/<source name>).")] = None,
              queries_per_listing: Annotated[Optional[int], typer.Option(help="Queries per listing (default finetune.queries_per_listing).")] = None,
              seed: Annotated[Optional[int], typer.Option(help="Seed (default finetune.seed).")] = None,
              keyphrases: Annotated[Optional[str], typer.Option(help="template: tfidf (words) | yake | keybert (keyphrases; default finetune.keyphrases).")] = None,
              specifics_weight: Annotated[Optional[float], typer.Option(min=0, help="template: weight of the `specifics` style, role + "
                                                                        "keyphrases + city/employer type (default finetune.specifics_weight).")] = None,
              concurrency: Annotated[int, typer.Option(help="llm: parallel requests.")] = 4,
              retries: Annotated[int, typer.Option(help="llm: retries per listing.")] = 3) -> None:
    """Generate (query, listing) pairs and write a leakage-safe train/val/test dataset dir."""
    from finetune.pairs import LLMGenerator, TemplateGenerator, build_dataset, source_hash
    from ingest.pipeline import read_listings

    overrides = {k: v for k, v in dict(keyphrases=keyphrases, specifics_weight=specifics_weight).items() if v is not None}
    settings = cli_settings(None, maps, finetune=overrides)
    fs = settings.finetune
    spec = source or settings.ingest.source
    read = read_listings(spec, settings, limit)
    k = queries_per_listing or fs.queries_per_listing
    seed = fs.seed if seed is None else seed
    out = out or settings.home / "pairs" / Path(spec.replace("hub:", "")).stem
    meta: dict[str, Any] = {"generator": generator, "source": spec, "source_hash": source_hash(read.listings), "queries_per_listing": k}
    if generator == "template":
        gen = TemplateGenerator(read.listings, k, seed, keyphrases=fs.keyphrases, specifics_weight=fs.specifics_weight, model=fs.base_model)
        meta |= {"keyphrases": fs.keyphrases, "specifics_weight": fs.specifics_weight}
        queries = {x.id: gen(x) for x in read.listings}
    elif generator == "llm":
        from rag_app.llms import build_llm

        if settings.llm.mode != "openai":
            raise ConfigError("--generator llm uses the OpenAI-compatible LLM: set llm.mode=openai and llm.api_base (the local 135M model cannot write queries)")
        llm = build_llm(settings.llm, settings.dir("cache"))
        gen_llm = LLMGenerator(lambda prompt: llm.complete(prompt).text, out / "llm-checkpoint.jsonl", n=k,
                               prompt=fs.llm_prompt, concurrency=concurrency, retries=retries)
        done = gen_llm.run(read.listings)
        queries = {lid: [(q, "llm") for q in qs] for lid, qs in done.items()}
        meta |= {"llm_model": settings.llm.model, "llm_api_base": settings.llm.api_base, "prompt": fs.llm_prompt}
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
             negatives: Annotated[bool, typer.Option("--negatives/--no-negatives", help="Mine hard negatives.")] = True,
             negatives_from: Annotated[Optional[str], typer.Option("--negatives-from", help="dense (base model) | bm25 (shared words) | both "
                                                                    "(default finetune.negatives; given, --time-budget keeps it).")] = None,
             eval_queries: Annotated[Optional[Path], typer.Option("--eval", help="Extra BEIR query dir evaluated before/after (e.g. dev_a).")] = None,
             eval_corpus: Annotated[Optional[Path], typer.Option(help="Corpus for --eval (jobs JSONL or BEIR corpus).")] = None,
             max_steps: Annotated[int, typer.Option(help="Stop after N steps (smoke runs); -1 = full epochs.")] = -1,
             eval_steps: Annotated[Optional[int], typer.Option(min=0, help="Evaluate/checkpoint every N steps, best kept (0 = per epoch).")] = None,
             seed: Annotated[Optional[int], typer.Option()] = None,
             tune_fusion: Annotated[Optional[bool], typer.Option("--tune-fusion/--no-tune-fusion", help="Tune the hybrid fusion on the val "
                                                                 "split and write fusion.json (default finetune.tune_fusion).")] = None,
             pairs_file: Annotated[Optional[list[Path]], typer.Option("--pairs-file", help="Search-log judgements, repeatable: CSV/JSONL with "
                                                                       "query,listing_id[,label] or query,positive[,negative] (listing ids); alone "
                                                                       "(listings from --source) or with a gen-pairs --pairs dir.")] = None,
             source: Annotated[Optional[str], typer.Option("--source", help="--pairs-file alone: the listings its ids name (default ingest.source).")] = None,
             time_budget: Annotated[Optional[str], typer.Option(help="Finish inside this wall-clock time (90s, 10m, 1h): the first steps are "
                                                                    "timed and the schedule sized to fit (default finetune.time_budget).")] = None,
             export: Annotated[Optional[str], typer.Option(help="Also write the ONNX encoder beside the weights: onnx-int8 | onnx.")] = None,
             maps: MapOpt = None) -> None:
    """Fine-tune the embedder (SentenceTransformerTrainer); writes the model, its card, manifest.json and fusion.json."""
    from eval.benchmarks import load_beir, load_corpus
    from finetune import card
    from finetune.budget import parse_duration
    from finetune.train import fit

    started = time.perf_counter()
    overrides = {k: v for k, v in dict(base_model=base, loss=loss, epochs=epochs, batch_size=batch_size, max_seq_length=max_seq_length,
                                         learning_rate=learning_rate, matryoshka=matryoshka, eval_steps=eval_steps, seed=seed,
                                         tune_fusion=tune_fusion, negatives=negatives_from, time_budget=time_budget).items() if v is not None}
    settings = cli_settings(None, maps, finetune=overrides)
    fs = settings.finetune
    budget_s = parse_duration(fs.time_budget) if fs.time_budget else None
    if export is not None and export not in ONNX_BACKENDS:
        raise ConfigError(f"unknown --export {export!r}; valid: {', '.join(ONNX_BACKENDS)}")
    if pairs_file:
        data = file_pairs_data(pairs_file, pairs, source, settings)
    elif source:
        raise ConfigError("--source goes with --pairs-file (the listings its ids name); a gen-pairs dir holds its own listings")
    else:
        pairs = _pairs_dir(settings, pairs)
        data = _training_data(pairs, fs.seed)
    if data.kind == "scored":
        fs = fs.model_copy(update={"loss": loss or "cosent"})
    extra = {}
    if data.test is not None:
        extra["test"] = data.model_copy(update={"val": data.test})
    if eval_queries:
        extra[Path(eval_queries).name] = load_beir(eval_queries, "test", load_corpus(eval_corpus) if eval_corpus else None)
    out = out or settings.home / "models" / "finetuned"
    quiet_transformers()
    run = fit(data, fs.base_model, out, fs, hard_negatives=negatives, extra_evals=extra, max_steps=max_steps, time_budget_s=budget_s,
              started=started, reserve_s=EXPORT_RESERVE_S if export else 0.0, pin_negatives=negatives_from is not None,
              reserve_split=data.val if fs.tune_fusion and isinstance(data.val, IRSplit) else None)  # fusion tuning encodes val once
    if export:
        from rag_app.onnx_backend import export_model

        t = time.perf_counter()
        export_model(str(out), export)
        run.timings["export_s"] = time.perf_counter() - t
    manifest = card.write(out, run, data.name, pairs if pairs and pairs.is_dir() else None, data.meta, fs.model_dump(), time.perf_counter() - started)
    rows = {k: f"{run.before[k]:.4f} -> {run.after[k]:.4f}" for k in run.before if any(m in k for m in ("ndcg@10", "mrr@10", "recall@10", "spearman_cosine"))}
    console.print(kv_table(f"finetune {data.name} ({run.loss}) -> {out}", {**rows, **{k: f"{v:.1f}" for k, v in manifest["durations_s"].items()},
                                                                               "steps": run.steps, "train rows": run.train_rows}))
    if run.budget is not None:
        b = manifest["time_budget"]
        console.print(f"time budget {b['budget_s']:.0f}s: planned {b['planned_steps']} of {b['full_schedule_steps']} steps at "
                      f"{b['seconds_per_step']:.2f}s/step, ran {b['steps_run']}; took {b['actual_total_s']:.0f}s")
        for name, n in b.get("evaluated_on", {}).items():
            console.print(f"  {name} evaluated on {n['listings']} of {n['of_listings']} listings ({n['queries']} queries) to fit the budget")
        if (neg := b.get("negatives", {})).get("used") != neg.get("requested"):
            console.print(f"  {neg['used']} negatives in place of {neg['requested']} (estimated {neg['estimated_dense_s']:.0f}s, over "
                          f"{neg['limit_s']:.0f}s)")
    if fs.tune_fusion and isinstance(data.val, IRSplit):
        _tune_fusion(out, data, pairs, settings)
    console.print(f"use it: JOBRAG_EMBEDDING__MODEL={out} jobrag ingest   (or the `finetuned` profile)")


def _pairs_dir(settings: Any, pairs: Path | None) -> Path:
    """--pairs, else the dataset `jobrag gen-pairs` wrote last, else <home>/pairs/sample."""
    latest = settings.home / "pairs" / "LATEST"
    return pairs or (Path(latest.read_text().strip()) if latest.exists() else settings.home / "pairs" / "sample")


def _training_data(pairs: Path, seed: int) -> TrainingData:
    from eval.benchmarks import beir_training_data, is_beir_dir, is_stsb_dir, stsb_training_data
    from finetune.pairs import load_training_data

    if is_stsb_dir(pairs):
        return stsb_training_data(pairs)
    if is_beir_dir(pairs):
        return beir_training_data(pairs, seed=seed)
    if (pairs / "train.json").exists():
        return load_training_data(pairs)
    raise ConfigError(f"{pairs} is not a gen-pairs dir (train.json), a BEIR dir (queries.jsonl + qrels/) or an STS-B dir (train.csv, dev.csv)")


def _tune_fusion(out: Path, data: TrainingData, pairs: Path | None, settings: Any) -> None:
    """Tune the hybrid fusion of the saved model on the val split; write fusion.json and a card section; print the pick."""
    from finetune import card
    from finetune.fusion import tune_saved

    rs = settings.retrieval
    info = {"data": data.name, "split": "val", "dir": str(pairs), "file_sha256_16": card.file_hashes(pairs).get("val.json") if pairs else None}
    choice = tune_saved(out, data.val, rs.fusion_depth, rs.rrf_k, info, settings.embedding.device)
    card.append_fusion(out, choice)
    best = choice.fusion().label()
    console.print(kv_table(f"hybrid fusion tuned on val ({choice.split['queries']} queries) -> {out / 'fusion.json'}",
                           {"recommended": best, choice.metric: f"{choice.value:.4f}",
                            **{f"{m} best": f"{max(v.values()):.4f}" for m, v in choice.candidates.items()},
                            "dense only / bm25 only": f"{choice.candidates['convex']['1']:.4f} / {choice.candidates['convex']['0']:.4f}",
                            "seconds": f"{choice.seconds:.1f}"}))


def train_reranker(pairs: Annotated[Optional[Path], typer.Option(help="A gen-pairs dir or a BEIR dir (default: the latest gen-pairs).")] = None,
                   out: Annotated[Optional[Path], typer.Option(help="Model dir (default <home>/models/reranker).")] = None,
                   base: Annotated[Optional[str], typer.Option(help="Start checkpoint (default finetune.reranker_base; a "
                                                                    "sentence-embedding model gets a fresh head).")] = None,
                   miner: Annotated[Optional[str], typer.Option(help="Embedder that mines hard negatives and ranks the val candidates "
                                                                     "(default finetune.base_model).")] = None,
                   epochs: Annotated[Optional[int], typer.Option(min=1)] = None,
                   batch_size: Annotated[Optional[int], typer.Option(min=2)] = None,
                   learning_rate: Annotated[Optional[float], typer.Option()] = None,
                   max_length: Annotated[Optional[int], typer.Option(min=16, help="Word pieces of (query, passage) (default finetune.max_seq_length).")] = None,
                   max_steps: Annotated[int, typer.Option(help="Stop after N steps (bounded runs); -1 = full epochs.")] = -1,
                   eval_queries: Annotated[Optional[int], typer.Option(min=1, help="Val queries re-ranked before/after (default "
                                                                                    "finetune.reranker_eval_queries).")] = None,
                   seed: Annotated[Optional[int], typer.Option()] = None) -> None:
    """Train a cross-encoder reranker on generated pairs with mined hard negatives; use it with a `+rerank:DIR` spec."""
    from finetune.rerank import fit_reranker, write_manifest

    overrides = {k: v for k, v in dict(reranker_base=base, base_model=miner, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                         max_seq_length=max_length, reranker_eval_queries=eval_queries, seed=seed).items() if v is not None}
    settings = cli_settings(None, None, finetune=overrides)
    fs = settings.finetune
    pairs = _pairs_dir(settings, pairs)
    data = _training_data(pairs, fs.seed)
    out = out or settings.home / "models" / "reranker"
    quiet_transformers()
    started = time.perf_counter()
    run = fit_reranker(data, out, fs, settings.retrieval.rerank_depth, max_steps, settings.embedding.device)
    write_manifest(out, run, data.name, pairs if pairs.is_dir() else None, fs.model_dump())
    rows = {k: f"{run.before[k]:.4f} -> {run.after[k]:.4f}" for k in run.before if "base" not in k}
    first_stage = {f"first stage {k.removeprefix('val_base_')}": f"{v:.4f}" for k, v in run.before.items() if "base" in k}
    console.print(kv_table(f"train-reranker {data.name} -> {out}", {**rows, **first_stage, "steps": run.steps, "train rows": run.train_rows,
                                                                     "seconds": f"{time.perf_counter() - started:.1f}"}))
    console.print(f"use it: jobrag compare ... --retriever rr=hybrid:MODEL+rerank:{out}   (or retrieval.rerank_model: {out})")


def file_pairs_data(files: list[Path], pairs: Path | None, source: str | None, settings: Any) -> Any:
    """`--pairs-file` judgements as TrainingData: over a gen-pairs dir's listings and splits (merged into its pairs), or
    over the `--source` listings split as `jobrag gen-pairs` would split them."""
    from finetune.pairs import load_training_data, source_hash
    from finetune.pairs_file import listings_of, read_pairs_files, with_file_pairs
    from finetune.split import listing_splits

    judgements, report = read_pairs_files(files)
    if pairs is not None:
        if source:
            raise ConfigError(f"--source is not used with --pairs {pairs}: the file pairs name listings of that gen-pairs dir")
        if not (pairs / "train.json").exists():
            raise ConfigError(f"--pairs-file mixes with a gen-pairs dir only; {pairs} has no train.json (create one with `jobrag gen-pairs`)")
        base = load_training_data(pairs)
        texts, split_of = listings_of(base)
        data = with_file_pairs(judgements, report, texts, split_of, base.groups, base=base)
    else:
        from ingest.pipeline import read_listings

        spec = source or settings.ingest.source
        read = read_listings(spec, settings)
        groups, split_of = listing_splits(read.listings, seed=settings.finetune.seed)
        data = with_file_pairs(judgements, report, {x.id: x.document_text() for x in read.listings}, split_of, groups,
                               name=f"pairs-file over {spec}", meta={"source": spec, "source_hash": source_hash(read.listings)},
                               aliases={f.id: f.kept for f in read.folds}, dropped={r.id for r in read.rejects if r.id})
    console.print(kv_table(f"pairs files: {', '.join(map(str, files))}", {"rows": report.rows, **report.counts}))
    for reason, example in report.examples.items():
        console.print(f"[yellow]rejected ({reason}), e.g. {example}[/yellow]")
    return data
