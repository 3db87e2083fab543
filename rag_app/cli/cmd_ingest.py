"""`jobrag ingest`: read, clean, dedupe, chunk, embed and upsert listings into the embedder's own collection."""

from __future__ import annotations

import re
from typing import Annotated, Optional

import typer

from rag_app.cli.common import EmbedderOpt, LimitOpt, MapOpt, SourceOpt, cli_settings, console, kv_table, quiet_transformers
from rag_app.errors import ConfigError


def ingest(source: SourceOpt = None, embedder: EmbedderOpt = None, limit: LimitOpt = None, maps: MapOpt = None,
           prune: Annotated[bool, typer.Option("--prune", help="Remove listings no longer in the source.")] = False,
           progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
           as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
           shard: Annotated[Optional[str], typer.Option("--shard", help="K/N: write only shard K of N (a stable hash of the listing id), so "
                                                        "N machines ingest one source into one Chroma server in parallel.")] = None) -> None:
    """Clean, chunk, embed and upsert listings into the embedder's own Chroma collection (idempotent, resumable)."""
    from ingest.pipeline import Ingestor, read_listings
    from rag_app.embeddings import build_embedder
    from rag_app.store import Store

    settings = cli_settings(embedder, maps)
    part = parse_shard(shard)
    read = read_listings(source or settings.ingest.source, settings, limit)  # bad paths/mappings fail before any model loads
    quiet_transformers()
    summary = Ingestor(settings, build_embedder(settings.embedding), Store.from_settings(settings)).run(read, prune=prune, progress=progress, shard=part)
    if as_json:
        print(summary.model_dump_json())
        return
    rows = {**summary.model_dump(include={"rows", "added", "updated", "unchanged", "rejected", "duplicates", "near_duplicates", "pruned",
                                          "chunks_written"}),
            "seconds": f"{summary.seconds:.1f}", "listings/s": f"{summary.listings_per_s:.1f}"}
    console.print(kv_table(f"ingest {summary.source}{f' (shard {shard})' if part else ''} -> {summary.collection}", rows))
    if summary.rejected:
        console.print(f"{summary.rejected} rejected row(s), reasons in {summary.rejects_path}")
    if summary.near_duplicates:
        console.print(f"{summary.near_duplicates} near-duplicate listing(s) folded into earlier copies, listed in {summary.near_duplicates_path}")


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (2, 4); one line naming the form for anything else."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ConfigError(f"--shard takes K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(match.group(1)), int(match.group(2))
