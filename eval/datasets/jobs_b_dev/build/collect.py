"""Collect graders' sheets into the BEIR files of the jobs_b dev set, with agreement on the double-graded pairs.

Reads /work/jobsb/grading/key.tsv and one `sheetNN.grades.tsv` per sheet (`pair-id<TAB>grade<TAB>short reason`),
checks that every pair of every sheet has exactly one grade in {0, 1, 2}, and reports, on the pairs graded in two
sheets, exact agreement and Cohen's kappa (unweighted and linear-weighted, sklearn).

Disagreements are resolved by --resolve:
  third (default): a third, independent grade from `adjudication.grades.tsv` (same line format); the final grade is
         the median of the three, i.e. the majority grade, or 1 when the three grades are 0, 1 and 2. When that file
         is missing or incomplete, collect writes `adjudication.md` (a blind sheet of the disagreements) and stops.
  lower: the lower of the two grades (conservative; no third grader needed).

Writes into --out (the repo's eval/datasets/jobs_b_dev/): qrels/test.tsv (grade >= 1), judgments_all.tsv (every
judged pair with pool_source), queries.jsonl, grading_summary.json (counts and agreement, numbers only).

    python eval/datasets/jobs_b_dev/build/collect.py --queries Q1.tsv Q2.tsv [--resolve lower]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
from pathlib import Path

from common import CORPUS, DATASET_DIR, PRIVATE, load_corpus, read_queries, read_targets, read_tsv, write_tsv
from sheets import sheet_markdown

GRADES = (0, 1, 2)


def read_grades(path: Path, expected: set[str], problems: list[str]) -> dict[str, int]:
    """pair-id -> grade from one grades file; problems (unknown, duplicate, missing, bad grade) are appended."""
    grades: dict[str, int] = {}
    if not path.exists():
        problems.append(f"{path}: missing")
        return grades
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        pid, grade = parts[0].strip(), parts[1].strip() if len(parts) > 1 else ""
        if pid not in expected:
            problems.append(f"{path}:{n}: pair {pid!r} is not on this sheet")
        elif pid in grades:
            problems.append(f"{path}:{n}: pair {pid} graded twice")
        elif grade not in {str(g) for g in GRADES}:
            problems.append(f"{path}:{n}: grade {grade!r} is not 0, 1 or 2")
        else:
            grades[pid] = int(grade)
            if len(parts) < 3 or not parts[2].strip():
                print(f"warning: {path}:{n}: no reason given", file=sys.stderr)
    missing = sorted(expected - set(grades))
    if missing:
        problems.append(f"{path}: {len(missing)} pairs ungraded, e.g. {', '.join(missing[:5])}")
    return grades


def agreement(first: list[int], second: list[int]) -> dict:
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    n = len(first)
    if n == 0:
        return {"pairs": 0}
    return {
        "pairs": n,
        "exact_agreement": round(sum(a == b for a, b in zip(first, second)) / n, 4),
        "kappa": round(float(cohen_kappa_score(first, second, labels=list(GRADES))), 4),
        "kappa_linear": round(float(cohen_kappa_score(first, second, labels=list(GRADES), weights="linear")), 4),
        "confusion_first_by_second": confusion_matrix(first, second, labels=list(GRADES)).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=Path, nargs="+", required=True)
    ap.add_argument("--grading", type=Path, default=PRIVATE / "grading")
    ap.add_argument("--pool", type=Path, default=DATASET_DIR / "pool.tsv", help="pool with pool_source (repo copy)")
    ap.add_argument("--resolve", choices=("third", "lower"), default="third")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--targets", type=Path, default=DATASET_DIR / "targets.tsv")
    ap.add_argument("--out", type=Path, default=DATASET_DIR)
    args = ap.parse_args()

    corpus, targets = load_corpus(args.corpus), read_targets(args.targets)
    queries = read_queries(args.queries, targets, corpus)
    key = {r["pair-id"]: r for r in read_tsv(args.grading / "key.tsv")}
    source = {(r["query-id"], r["corpus-id"]): r["pool_source"] for r in read_tsv(args.pool)}
    if set(source) != {(r["query-id"], r["corpus-id"]) for r in key.values()}:
        raise SystemExit(f"{args.pool} and {args.grading / 'key.tsv'} hold different pairs: was the pool rebuilt?")

    on_sheet: dict[str, set[str]] = collections.defaultdict(set)
    for pid, r in key.items():
        for sheet in r["sheets"].split(","):
            on_sheet[sheet].add(pid)
    problems: list[str] = []
    graded = {s: read_grades(args.grading / f"{s}.grades.tsv", pids, problems) for s, pids in sorted(on_sheet.items())}
    if problems:
        raise SystemExit("incomplete or invalid grades:\n  " + "\n  ".join(problems))

    by_pair: dict[str, list[int]] = collections.defaultdict(list)
    for s in sorted(graded):
        for pid, g in graded[s].items():
            by_pair[pid].append(g)
    doubles = sorted(p for p, gs in by_pair.items() if len(gs) == 2)
    agree = agreement([by_pair[p][0] for p in doubles], [by_pair[p][1] for p in doubles])
    print(f"double-graded: {json.dumps(agree)}")

    disagreements = [p for p in doubles if by_pair[p][0] != by_pair[p][1]]
    if args.resolve == "third" and disagreements:
        adj_path = args.grading / "adjudication.grades.tsv"
        adj_problems: list[str] = []
        third = read_grades(adj_path, set(disagreements), adj_problems)
        if adj_problems:
            text = {q.qid: q.text for q in queries}
            pairs = {p: (key[p]["query-id"], key[p]["corpus-id"]) for p in disagreements}
            (args.grading / "adjudication.md").write_text(
                sheet_markdown("adjudication", disagreements, pairs, text, corpus), encoding="utf-8")
            raise SystemExit(f"{len(disagreements)} disagreements need a third grade: have "
                             f"{args.grading / 'adjudication.md'} graded into {adj_path} (or use --resolve lower)\n  "
                             + "\n  ".join(adj_problems))
        for p in disagreements:
            by_pair[p].append(third[p])
    final = {p: int(statistics.median(gs)) if len(gs) == 3 else min(gs) for p, gs in by_pair.items()}

    rows = sorted(((key[p]["query-id"], key[p]["corpus-id"], g) for p, g in final.items()), key=lambda r: (r[0], -r[2], r[1]))
    write_tsv(args.out / "judgments_all.tsv", ["query-id", "corpus-id", "score", "pool_source"],
              [[q, c, g, source[(q, c)]] for q, c, g in rows])
    write_tsv(args.out / "qrels" / "test.tsv", ["query-id", "corpus-id", "score"], [[q, c, g] for q, c, g in rows if g >= 1])
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps({"_id": q.qid, "text": q.text, "style": q.style}, ensure_ascii=False) + "\n" for q in queries)

    grade_counts = collections.Counter(g for _, _, g in rows)
    relevant = collections.Counter(q for q, _, g in rows if g >= 1)
    weak_targets = sorted(q for q, c, g in rows if c == targets[q][0] and g < 2)
    summary = {
        "queries": len(queries), "judged_pairs": len(rows), "grades": {str(g): grade_counts[g] for g in GRADES},
        "relevant_per_query": {"mean": round(statistics.mean(relevant[q.qid] for q in queries), 2),
                               "median": statistics.median(relevant[q.qid] for q in queries),
                               "min": min(relevant[q.qid] for q in queries), "max": max(relevant[q.qid] for q in queries)},
        "double_graded": agree, "disagreements": len(disagreements), "resolve": args.resolve,
        "targets_graded_below_2": weak_targets,
    }
    (args.out / "grading_summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in summary.items() if k != "double_graded"}))
    print(f"wrote {args.out / 'qrels' / 'test.tsv'}, judgments_all.tsv, queries.jsonl, grading_summary.json")


if __name__ == "__main__":
    main()
