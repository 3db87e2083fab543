"""Blind grading sheets from the pool (outside the repo: they show listing text).

All pooled (query, posting) pairs are shuffled across queries with random.Random(SHEET_SEED), given pair ids
p0001.. in a second random order (so an id tells nothing about sheet, query or double grading) and cut into --sheets
contiguous sheets. A seeded --double share of the pairs (random.Random(DOUBLE_SEED)) is copied into a second,
different sheet, so that two graders grade it independently. Each sheet lists its pairs in pair-id order. Sheets
show the query and the posting (title, company, location, salary, work_type, experience_level, first
DESCRIPTION_CHARS characters), never the pool source, the ranks or which posting was the target.

    python eval/datasets/jobs_b_dev/build/sheets.py --queries Q1.tsv Q2.tsv --sheets 6
    # -> /work/jobsb/grading/{GRADING.md, sheet01.md .., key.tsv}; graders write sheetNN.grades.tsv
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from common import CORPUS, DATASET_DIR, PRIVATE, excerpt, load_corpus, read_queries, read_targets, read_tsv, write_tsv

SHEET_SEED = 20180724
DOUBLE_SEED = 20180725
DESCRIPTION_CHARS = 700
FIELDS = ("title", "company", "location", "salary", "work_type", "experience_level")

DEV_A_README = CORPUS.parent / "dev_a" / "README.md"

# jobs_b-specific readings of dev_a's rubric (dev_a's own text is read at run time, see dev_a_rubric()).
JOBS_B_NOTES = """\
## How the rubric applies to jobs_b (California data/analytics postings, 2018)
- Everything in this corpus is data or analytics work, so "occupation" means the kind of data job: data scientist,
  data analyst, data engineer / big-data engineer, BI or reporting analyst, business analyst, financial analyst,
  marketing analyst, ML / research scientist, and so on. A clearly different kind is grade 0 when the query is
  specific about it (e.g. a data engineer for a data-scientist query, a financial analyst for a clinical-data query,
  a software engineer for an analyst query). Analyst versus scientist doing the same domain and duties is adjacent: 1.
- The specialty or domain the query states (marketing, fraud, healthcare, product, supply chain, ...) is part of
  "right occupation and specialty" for grade 2.
- Metro areas: San Francisco Bay Area (San Francisco, Peninsula, South Bay / Silicon Valley, East Bay, Marin),
  Greater Los Angeles (Los Angeles and Orange counties), San Diego County, Sacramento area, and so on. A posting whose
  location is only "California" cannot be checked against a city ask: grade 1 for that constraint. As every posting
  is in California, dev_a's "another state gives 1" reads here as "another metro area gives 1".
- Seniority: use `experience_level` together with the title and text.
- Schedule or contract type: use `work_type` and the text read. A contract, part-time, temporary or internship ask
  is missed by a plainly full-time posting; an empty `work_type` with nothing in the text is unverifiable.
- Read only what the sheet shows, and do not look the posting up elsewhere.
"""


def dev_a_rubric(readme: Path = DEV_A_README) -> str:
    """dev_a's grades and operational conventions, verbatim, from its README ("Grades:" up to the split step)."""
    lines = readme.read_text(encoding="utf-8").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Grades:")
        end = next(i for i in range(start, len(lines)) if lines[i].startswith("5. "))
    except StopIteration:
        raise SystemExit(f"could not find the grading rubric in {readme}") from None
    text = "\n".join(line[3:] if line.startswith("   ") else line for line in lines[start:end])
    # drop dev_a's per-query grade-1 statistic: it would anchor graders on another corpus's numbers
    return re.sub(r"\s*Grade-1 sets\s+are\s+therefore\s+large.*?on-topic ones\.", "", text, flags=re.S).strip() + "\n"


def sheet_markdown(name: str, pairs: list[str], key: dict[str, tuple[str, str]], queries: dict[str, str],
                   corpus: dict[str, dict]) -> str:
    out = [f"# Grading sheet {name} ({len(pairs)} pairs)", "",
           f"Read GRADING.md first. Write one line per pair to `{name}.grades.tsv`: `pair-id<TAB>grade<TAB>short reason`.",
           "", "---", ""]
    for pid in pairs:
        qid, cid = key[pid]
        row = corpus[cid]
        out += [f"## {pid}", "", f"**Query:** {queries[qid]}", ""]
        out += [f"- {f}: {row.get(f) or '-'}" for f in FIELDS]
        out += ["", excerpt(row["description"], DESCRIPTION_CHARS), "", "---", ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--sheets", type=int, required=True, help="number of sheets (about 250 pairs each)")
    ap.add_argument("--double", type=float, default=0.15, help="share of pairs graded twice, in two different sheets")
    ap.add_argument("--pool", type=Path, default=PRIVATE / "pool.tsv")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--targets", type=Path, default=DATASET_DIR / "targets.tsv")
    ap.add_argument("--out", type=Path, default=PRIVATE / "grading")
    args = ap.parse_args()
    if args.sheets < 2:
        raise SystemExit("--sheets must be at least 2 (double-graded pairs go into a second, different sheet)")

    corpus, targets = load_corpus(args.corpus), read_targets(args.targets)
    queries = {q.qid: q.text for q in read_queries(args.queries, targets, corpus)}
    pool = [(r["query-id"], r["corpus-id"]) for r in read_tsv(args.pool)]
    unknown = {qid for qid, _ in pool} - set(queries)
    if unknown:
        raise SystemExit(f"pool has queries missing from --queries: {sorted(unknown)}")

    rng = random.Random(SHEET_SEED)
    rng.shuffle(pool)
    numbers = rng.sample(range(1, len(pool) + 1), len(pool))  # ids say nothing about sheet, query or double grading
    key = {f"p{n:04d}": pair for n, pair in zip(numbers, pool)}
    pids = list(key)
    size = -(-len(pids) // args.sheets)
    sheets = [pids[i * size:(i + 1) * size] for i in range(args.sheets)]
    home = {pid: s for s, chunk in enumerate(sheets) for pid in chunk}

    rng = random.Random(DOUBLE_SEED)
    doubled = sorted(rng.sample(pids, round(args.double * len(pids))))
    second: dict[str, int] = {}
    for pid in doubled:
        other = rng.choice([s for s in range(args.sheets) if s != home[pid]])
        second[pid] = other
        sheets[other].append(pid)  # each sheet is shown in pair-id order, i.e. random order

    args.out.mkdir(parents=True, exist_ok=True)
    names = [f"sheet{s + 1:02d}" for s in range(args.sheets)]
    (args.out / "GRADING.md").write_text(
        "# Grading jobs_b (query, posting) pairs\n\nEach sheet lists pairs in random order. For every pair write one line "
        "`pair-id<TAB>grade<TAB>short reason` (grade 0, 1 or 2; reason a few words, no tabs) into the sheet's "
        "`.grades.tsv` file, no header. Grade each pair on its own: the same query appears with several postings.\n\n"
        + "## Rubric (as used for the dev_a set)\n\n" + dev_a_rubric() + "\n" + JOBS_B_NOTES, encoding="utf-8")
    for name, chunk in zip(names, sheets):
        (args.out / f"{name}.md").write_text(sheet_markdown(name, sorted(chunk), key, queries, corpus), encoding="utf-8")
    write_tsv(args.out / "key.tsv", ["pair-id", "query-id", "corpus-id", "sheets"],
              [[pid, *key[pid], ",".join(names[s] for s in sorted({home[pid], second.get(pid, home[pid])}))]
               for pid in sorted(pids)])
    print(f"{len(pids)} pairs, {len(doubled)} double-graded; sheets: "
          + ", ".join(f"{n} {len(c)}" for n, c in zip(names, sheets)))
    print(f"wrote {args.out}/GRADING.md, {', '.join(n + '.md' for n in names)}, key.tsv")


if __name__ == "__main__":
    main()
