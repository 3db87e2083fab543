"""`jobrag compare`: N retrievers over one query set, per query, with paired statistics (registered by rag_app.cli)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from rag_app.cli.common import cli_settings, console, quiet_transformers
from rag_app.errors import ConfigError, require_extra
from rag_app.settings import JUDGE_MODES


def _query_set(queries: Path, corpora: list[Path], split: str):
    """The split to score and the corpus files to index: the --corpus files (their union; an id in two is an error),
    else a BEIR dir's own corpus."""
    from eval.benchmarks import is_beir_dir, load_beir, load_corpora
    from finetune.pairs import load_split

    if not queries.exists():
        raise ConfigError(f"--queries {queries} does not exist")
    if is_beir_dir(queries):
        pool = corpora or [p for p in (queries / "corpus.jsonl", queries / "corpus.jsonl.gz") if p.exists()][:1]
        return load_beir(queries, split, load_corpora(pool) if pool else None), pool  # load_corpora reads BEIR or jobs rows
    if (queries / f"{split}.json").exists():  # a gen-pairs dataset: its split's corpus, plus the pool's listings (their text)
        ir = load_split(queries, split)
        return (ir.model_copy(update={"corpus": {**load_corpora(corpora), **ir.corpus}}) if corpora else ir), corpora
    raise ConfigError(f"{queries} is neither a BEIR dir (queries.jsonl + qrels/) nor a gen-pairs dir ({split}.json)")


def _judge(judge: str, api_base: str | None, model: str | None, settings: Any):
    """`--judge openai`: an explicit OpenAI-compatible endpoint (flag, else llm.api_base) — never a silent OpenAI default."""
    from eval.answers import JudgeConfig

    if judge not in JUDGE_MODES:
        raise ConfigError(f"unknown judge mode {judge!r}; valid modes: {', '.join(JUDGE_MODES)}")
    if judge == "none":
        return None
    ev = settings.eval
    base = api_base or ev.judge_api_base or settings.llm.api_base
    if not base:
        raise ConfigError("--judge openai needs an OpenAI-compatible endpoint: --judge-api-base URL (or eval.judge_api_base, "
                          "llm.api_base); there is no default endpoint")
    secret = ev.judge_api_key or settings.llm.api_key
    key = secret.get_secret_value() if secret else None
    judge_model = model or ev.judge_model or settings.llm.model
    if not judge_model:
        raise ConfigError("--judge openai needs a model name: --judge-model NAME (or eval.judge_model, llm.model)")
    return JudgeConfig(api_base=base, model=judge_model, api_key=key, timeout_s=settings.llm.timeout_s,
                       max_retries=settings.llm.max_retries, seed=settings.eval.seed)


def compare(queries: Annotated[Path, typer.Option(help="BEIR dir (queries.jsonl + qrels/<split>.tsv) or a gen-pairs dir.")],
            retriever: Annotated[list[str], typer.Option(help="LABEL=SPEC, repeatable: dense:MODEL | bm25 | hybrid:MODEL.")],
            corpus: Annotated[Optional[list[Path]], typer.Option(help="Candidate pool: jobs JSONL, BEIR corpus or `sample`, repeatable: the pool is "
                                                                 "the union (ids must be unique across files; default: the dir's corpus).")] = None,
            out: Annotated[Optional[Path], typer.Option(help="Report dir (default <home>/reports/compare-<time>).")] = None,
            split: Annotated[str, typer.Option(help="Qrels split.")] = "test",
            depth: Annotated[int, typer.Option(min=10, help="Listings retrieved per query (recall@100 needs 100).")] = 100,
            answers: Annotated[bool, typer.Option("--answers/--no-answers", help="Also answer each query with each retriever's "
                                                  "context through the chat pipeline and score the answers (ragas).")] = False,
            llm: Annotated[Optional[str], typer.Option("--llm", help="Answer LLM: local | openai | none (overrides llm.mode).")] = None,
            judge: Annotated[str, typer.Option(help="Judge for LLM-graded answer metrics: none | openai (an OpenAI-compatible endpoint).")] = "none",
            judge_api_base: Annotated[Optional[str], typer.Option(help="Judge endpoint (default llm.api_base; no OpenAI default).")] = None,
            judge_model: Annotated[Optional[str], typer.Option(help="Judge model name (default llm.model).")] = None,
            answer_limit: Annotated[Optional[int], typer.Option(min=1, help="Answer only the first N queries (generation is slow).")] = None,
            projection: Annotated[bool, typer.Option("--projection/--no-projection", help="2-D embedding projection per dense model in report.html.")] = True,
            extra_judgments: Annotated[Optional[list[Path]], typer.Option(help="More judgments (query-id, corpus-id, score TSV) "
                                                                         "merged into the pool, repeatable.")] = None,
            segment_by: Annotated[Optional[list[str]], typer.Option(help="Break every metric down by this field of queries.jsonl, "
                                                                    "repeatable (`style` is used whenever the queries carry it).")] = None,
            ) -> None:
    """Score retrievers per query (NDCG@10, MRR@10, Recall@10/100, Hit@k, MAP@100, Judged@10) with bootstrap CIs."""
    from eval.benchmarks import query_fields
    from eval.provenance import code_commit, inputs_record, library_versions
    from eval.report import write_report
    from eval.runs import ORACLE_LABEL, check_split, load_judged, merge_judgments, run_one
    from ingest.pipeline import Ingestor, read_listings
    from rag_app.retrievers import RetrieverFactory, parse_spec

    pairs = [r.split("=", 1) for r in retriever]
    if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise ConfigError(f"--retriever takes LABEL=SPEC, got {retriever}")
    specs = dict(pairs)
    if len(specs) != len(pairs):
        raise ConfigError(f"--retriever labels must be unique, got {[p[0] for p in pairs]}")
    if ORACLE_LABEL in specs:
        raise ConfigError(f"--retriever label {ORACLE_LABEL!r} is reserved for the report's per-query-best row; pick another")
    for spec in specs.values():
        parse_spec(spec)
    settings = cli_settings(None, None, retrieval={"top_k": depth, "candidate_k": 5 * depth}, llm={"mode": llm} if llm else None)
    if answers:
        require_extra("ragas", "eval", "compare --answers")
    judge_cfg = _judge(judge, judge_api_base, judge_model, settings) if answers else None
    if not answers and (judge != "none" or llm):
        console.print("[yellow]note:[/yellow] --judge/--llm only apply with --answers")
    from ingest.sources import local_path

    corpora = list(dict.fromkeys(local_path(p) for p in corpus or []))  # `sample`: the bundled listings
    ir, pool = _query_set(queries, corpora, split)
    if not ir.queries:
        raise ConfigError(f"no query in {queries}: the query file is empty")
    segments = query_fields(queries, segment_by or [])
    quiet_transformers()
    factory = RetrieverFactory.from_settings(settings)
    judged = load_judged(queries / "judgments_all.tsv")
    extra_notes: list[str] = []
    if extra_judgments:
        ir, judged, extra_notes = merge_judgments(ir, judged, extra_judgments)
    notes = check_split(ir, set(ir.corpus)) + extra_notes
    ir = ir.model_copy(update={"queries": {q: t for q, t in ir.queries.items() if ir.relevant_docs.get(q)}})
    if not ir.queries:
        raise ConfigError(f"no query in {queries} has a relevant document in qrels/{split}.tsv")
    reads = [read_listings(str(path), settings) for path in pool]
    for model in dict.fromkeys(parse_spec(s)[1] or settings.embedding.model for s in specs.values()):
        ingestor = Ingestor(settings, factory.embedder(model), factory.store)
        for read in reads:  # index the pool into each model's collection (idempotent: present listings are skipped)
            ingestor.run(read, progress=True)
    started = time.perf_counter()
    models = {label: parse_spec(spec)[1] or settings.embedding.model for label, spec in specs.items()}
    runs = [run_one(label, spec, factory.build(spec), ir, judged, None if parse_spec(spec)[0] == "bm25" else models[label])
            for label, spec in specs.items()]
    answer_eval = _answers(factory, settings, specs, ir, queries, judge_cfg, answer_limit) if answers else None
    projections = []
    runs_for_projection = sorted(runs, key=lambda r: parse_spec(r.spec)[0] != "dense")
    if projection:
        from eval.projection import projection as project

        seen: set[str] = set()
        for run in runs_for_projection:  # one picture per embedding model (dense first; hybrid when its model has no dense run)
            if parse_spec(run.spec)[0] != "bm25" and models[run.label] not in seen:
                seen.add(models[run.label])
                projections.append(project(run.label, models[run.label], factory.embedder(models[run.label]), ir.queries, ir.corpus,
                                           run.rankings, ir.relevant_docs))
    out = out or settings.home / "reports" / time.strftime("compare-%Y%m%d-%H%M%S")
    manifest = {"queries": str(queries), "extra_judgments": [str(p) for p in extra_judgments or []], "split": split,
                "corpus": [str(p) for p in pool], "retrievers": specs, "depth": depth, "segment_by": list(segments),
                "inputs": inputs_record(queries, split, pool, extra_judgments or []), "versions": library_versions(), "code": code_commit(),
                "seed": settings.eval.seed, "resamples": settings.eval.bootstrap_resamples, "seconds": time.perf_counter() - started,
                "collections": {m: factory.collection(m).metadata for m in {parse_spec(s)[1] or settings.embedding.model for s in specs.values()}},
                "answers": None if answer_eval is None else {"llm_mode": settings.llm.mode, "llm": answer_eval.llm, "judge": answer_eval.judge,
                                                             "answer_limit": answer_limit, "metrics_run": list(answer_eval.ran),
                                                             "ragas": library_versions(("ragas",))["ragas"]}}
    data = write_report(out, runs, ir.queries, notes, manifest, settings.eval.bootstrap_resamples, settings.eval.permutations, settings.eval.seed,
                        answers=answer_eval, projections=projections, segment_fields=segments)
    _print(data, ir, queries, out)


def _answers(factory: Any, settings: Any, specs: dict[str, str], ir: Any, queries_dir: Path, judge_cfg: Any, limit: int | None):
    """Answer every query through the chat pipeline with each retriever's context, then score (eval.answers)."""
    from eval.answers import generate_answers, load_references
    from eval.ragas_scoring import score_answers
    from rag_app.chat import ChatEngine
    from rag_app.llms import build_llm

    model = build_llm(settings.llm, settings.dir("cache")) if settings.llm.writes else None  # code-written answers need no model
    # each spec answers as it retrieves: `+understand` specs apply the understood constraints, plain ones do not
    engines = {label: ChatEngine.from_factory(factory, model, spec, top_k=10, understand=False, label=label) for label, spec in specs.items()}
    first = next(iter(engines.values()))
    context_k = settings.llm.context_listings  # the listings each answer was written from (what the judge checks it against)
    asked = dict(list(ir.queries.items())[:limit]) if limit else ir.queries
    rows = generate_answers(lambda question, label: engines[label].ask(question), list(specs), asked, context_k, settings.llm.context_chars)
    embedder_name = settings.embedding.model
    return score_answers(rows, ir.relevant_docs, load_references(queries_dir), embedder=factory.embedder(embedder_name), judge=judge_cfg,
                         llm=first.llm_label, embedder_name=embedder_name)


def _print(data: dict[str, Any], ir: Any, queries: Path, out: Path) -> None:
    from rich.table import Table

    from eval.segments import pivot_table

    table = Table(title=f"compare: {len(ir.queries)} queries from {queries}", title_justify="left")
    cols = ["ndcg@10", "mrr@10", "recall@10", "hit@1", "judged@10", "ndcg@10_condensed", "ms_per_query", "model_size_mb"]
    answer_cols = list(data.get("answers", {}).get("metrics_run", {}))
    short = {"ndcg@10_condensed": "ndcg@10 cond.", "ms_per_query": "ms/query", "model_size_mb": "size MB"}  # narrow terminals
    for c in ["retriever", *cols, *answer_cols]:
        table.add_column(short.get(c, c), justify="right")
    for label, m in data["retrievers"].items():
        table.add_row(label, *("–" if m.get(c) is None else f"{m[c]:.3f}" for c in cols),
                      *("–" if m.get(c) is None else f"{m[c]:.3f} (n={m.get(f'{c}_n')})" for c in answer_cols))
    oracle = data.get("oracle")
    if oracle:  # not a retriever: the per-query best, the headroom above the best single one
        table.add_row("oracle", *("–" if oracle.get(c) is None else f"{oracle[c]:.3f}" for c in cols), style="dim")
    console.print(table)
    if oracle:
        console.print(f"[dim]oracle row: per-query best of {', '.join(oracle['of'])}; NDCG@10 headroom {oracle['headroom']['delta']:+.3f} "
                      f"over {oracle['headroom']['best_retriever']}[/dim]")
    for name, segments in data.get("segments", {}).items():
        headers, rows = pivot_table(segments)
        seg_table = Table(title=f"NDCG@10 by {name} (mean [95 % CI])", title_justify="left")
        for c in headers:
            seg_table.add_column(c, justify="right")
        for row in rows:
            seg_table.add_row(*(str(c) for c in row))
        console.print(seg_table)
    for d in data["deltas"]:
        if d["metric"] in ("ndcg@10", "ndcg@10_condensed"):
            name = "NDCG@10" if d["metric"] == "ndcg@10" else "NDCG@10 condensed"
            console.print(f"{d['b']} vs {d['a']}: {name} {d['delta']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] p={d['p_value']:.4f} "
                          f"W/T/L {d['wins']}/{d['ties']}/{d['losses']}")
    if data.get("answers", {}).get("metrics_not_run"):
        for k, v in data["answers"]["metrics_not_run"].items():
            console.print(f"[dim]not run:[/dim] {k} — {v}")
    for n in data["notes"]:
        console.print(f"[yellow]note:[/yellow] {n}")
    console.print(f"report: {out}")
