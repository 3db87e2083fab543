"""`jobrag compare`: N retrievers over one query set, per query, with paired statistics (registered by rag_app.cli)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from rag_app.cli_common import cli_settings, console, quiet_transformers
from rag_app.errors import ConfigError


def _query_set(queries: Path, corpus: Path | None, split: str):
    from eval.benchmarks import is_beir_dir, load_beir, load_corpus
    from rag_app.records import IRSplit

    if is_beir_dir(queries):
        return load_beir(queries, split, load_corpus(corpus) if corpus else None), corpus or next(
            (p for p in (queries / "corpus.jsonl", queries / "corpus.jsonl.gz") if p.exists()), None)
    if (queries / f"{split}.json").exists():  # a gen-pairs dataset: its split's corpus is the pool
        import json

        raw = json.loads((queries / f"{split}.json").read_text())
        return IRSplit(queries=raw["queries"], corpus=raw["corpus"], relevant_docs=raw["relevant_docs"]), corpus
    raise ConfigError(f"{queries} is neither a BEIR dir (queries.jsonl + qrels/) nor a gen-pairs dir ({split}.json)")


def compare(queries: Annotated[Path, typer.Option(help="BEIR dir (queries.jsonl + qrels/<split>.tsv) or a gen-pairs dir.")],
            retriever: Annotated[list[str], typer.Option(help="LABEL=SPEC, repeatable: dense:MODEL | bm25 | hybrid:MODEL.")],
            corpus: Annotated[Optional[Path], typer.Option(help="Candidate pool: jobs JSONL or BEIR corpus (default: the dir's corpus).")] = None,
            out: Annotated[Optional[Path], typer.Option(help="Report dir (default <home>/reports/compare-<time>).")] = None,
            split: Annotated[str, typer.Option(help="Qrels split.")] = "test",
            depth: Annotated[int, typer.Option(min=10, help="Listings retrieved per query (recall@100 needs 100).")] = 100) -> None:
    """Score retrievers per query (NDCG@10, MRR@10, Recall@10/100, Hit@k, MAP@100, Judged@10) with bootstrap CIs."""
    from eval.report import write_report
    from eval.runs import check_split, load_judged, run_one
    from ingest.pipeline import Ingestor, read_listings
    from rag_app.retrievers import RetrieverFactory, parse_spec
    from rag_app.store import Store

    pairs = [r.split("=", 1) for r in retriever]
    if any(len(p) != 2 for p in pairs):
        raise ConfigError(f"--retriever takes LABEL=SPEC, got {retriever}")
    specs = dict(pairs)
    for spec in specs.values():
        parse_spec(spec)
    ir, pool = _query_set(queries, corpus, split)
    settings = cli_settings(None, None, retrieval={"top_k": depth, "candidate_k": 5 * depth})
    quiet_transformers()
    factory = RetrieverFactory(settings, Store.from_settings(settings))
    notes = check_split(ir, set(ir.corpus))
    ir = ir.model_copy(update={"queries": {q: t for q, t in ir.queries.items() if ir.relevant_docs.get(q)}})
    if not ir.queries:
        raise ConfigError(f"no query in {queries} has a relevant document in qrels/{split}.tsv")
    if pool is not None:  # index the pool into each model's collection (idempotent: present listings are skipped)
        read = read_listings(str(pool), settings)
        for model in dict.fromkeys(parse_spec(s)[1] or settings.embedding.model for s in specs.values()):
            Ingestor(settings, factory.embedder(model), factory.store).run(read, progress=True)
    judged = load_judged(queries / "judgments_all.tsv")
    started = time.perf_counter()
    runs = [run_one(label, spec, factory.build(spec), ir, judged,
                    None if parse_spec(spec)[0] == "bm25" else parse_spec(spec)[1] or settings.embedding.model) for label, spec in specs.items()]
    out = out or settings.home / "reports" / time.strftime("compare-%Y%m%d-%H%M%S")
    manifest = {"queries": str(queries), "split": split, "corpus": str(pool) if pool else None, "retrievers": specs, "depth": depth,
                "seed": settings.eval.seed, "resamples": settings.eval.bootstrap_resamples, "seconds": time.perf_counter() - started,
                "collections": {m: factory.collection(m).metadata for m in {parse_spec(s)[1] or settings.embedding.model for s in specs.values()}}}
    data = write_report(out, runs, ir.queries, notes, manifest, settings.eval.bootstrap_resamples, settings.eval.permutations, settings.eval.seed)
    from rich.table import Table

    table = Table(title=f"compare: {len(ir.queries)} queries from {queries}", title_justify="left")
    cols = ["ndcg@10", "mrr@10", "recall@10", "hit@1", "judged@10", "ms_per_query"]
    for c in ["retriever", *cols]:
        table.add_column(c, justify="right")
    for label, m in data["retrievers"].items():
        table.add_row(label, *("–" if m.get(c) is None else f"{m[c]:.3f}" for c in cols))
    console.print(table)
    for d in data["deltas"]:
        if d["metric"] == "ndcg@10":
            console.print(f"{d['b']} vs {d['a']}: NDCG@10 {d['delta']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] p={d['p_value']:.4f} "
                          f"W/T/L {d['wins']}/{d['ties']}/{d['losses']}")
    for n in notes:
        console.print(f"[yellow]note:[/yellow] {n}")
    console.print(f"report: {out}")
