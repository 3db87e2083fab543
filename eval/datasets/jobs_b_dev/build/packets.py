"""Write the query-writing packets (outside the repo: they show listing text) from targets.tsv.

Each target gets its query-id, its assigned style with dev_a's definition and examples of that style (read at run time
from shared/data/jobs/dev_a, so no dev_a text lives in the repo), then the posting's metadata and the first
DESCRIPTION_CHARS characters of its description. Targets are split into batches of BATCH_SIZE in query-id order.

    python eval/datasets/jobs_b_dev/build/packets.py            # -> /work/jobsb/packets/{INSTRUCTIONS,batch1,batch2}.md
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from common import CORPUS, DATASET_DIR, MAX_WORDS, MIN_WORDS, PRIVATE, STYLES, excerpt, load_corpus, read_targets
from sample import checkable_constraints

DEV_A = CORPUS.parent / "dev_a"
DESCRIPTION_CHARS = 1500
BATCH_SIZE = 40
EXAMPLES_PER_STYLE = 3  # besides the README's own example, drawn from dev_a's queries with random.Random(EXAMPLE_SEED)
EXAMPLE_SEED = 15

RULES = f"""\
- Write exactly one query per target, in the style assigned to it. Do not change the style.
- Write the query a job seeker would type if this posting were a great match for them. Describe the seeker's needs:
  skills, duties, seniority, pay, schedule, location or remote, industry, employer type.
- Never name the company (nor an obvious nickname or product of it).
- Do not copy distinctive phrases from the posting (its slogans, team names, unusual word sequences). Ordinary job
  vocabulary (job titles, tools such as SQL or Tableau, common duties) is fine.
- Length: {MIN_WORDS}-{MAX_WORDS} words.
- Every posting in this corpus is a data/analytics-type job in California from 2018, so a query such as "data analyst
  job" fits hundreds of postings. Say what makes this posting fit the seeker (specialty, domain or industry, tools,
  seniority, city or area, contract or internship) as a real seeker would, without turning the query into a summary.
- `constraint` style: state one or more explicit hard constraints that the target meets and a reader can check from
  what you see: city or metro area, remote, contract / part-time / internship / temporary, seniority level, a pay
  floor (only when a salary is shown). The packet lists which of these this target offers.
- Other styles may mention a location or seniority too, as a seeker naturally would, but need not.
- The dev_a examples show the styles only; they come from another corpus and some name products or places.
  You still never name the target's company.
- Look only at your packet. Do not search the corpus, other batches or other tools for similar postings.
"""


def style_guide(readme: Path, queries: Path) -> dict[str, tuple[str, list[str]]]:
    """style -> (dev_a's definition, examples): the README's example first, then a few seeded dev_a queries."""
    guide: dict[str, tuple[str, list[str]]] = {}
    rng = random.Random(EXAMPLE_SEED)
    dev_queries = [json.loads(line) for line in queries.open(encoding="utf-8")]
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `(\w+)` \| \d+ \| (.*?), e\.g\. \*\"(.*?)\"\* \|", line)
        if m and m.group(1) in STYLES:
            style, definition, example = m.groups()
            pool = sorted(q["text"] for q in dev_queries if q["style"] == style and q["text"] != example)
            guide[style] = (definition, [example, *rng.sample(pool, min(EXAMPLES_PER_STYLE, len(pool)))])
    missing = set(STYLES) - set(guide)
    if missing:
        raise SystemExit(f"could not read the style table of {readme} for {sorted(missing)}")
    return guide


def instructions(batches: list[str], guide: dict[str, tuple[str, list[str]]]) -> str:
    styles = "\n".join(f"- `{s}`: {d}. Examples (dev_a, another corpus): " + "; ".join(f'"{e}"' for e in ex)
                       for s, (d, ex) in guide.items())
    outputs = "\n".join(f"- `{b}.md` -> `{PRIVATE / ('queries_' + b + '.tsv')}`" for b in batches)
    return f"""# Writing queries for the jobs_b dev set

You get one packet of target postings. For each target, write one search query that the target satisfies well.
Your queries become the evaluation queries of a job-search system; other people will later judge which postings
match them, so write what a seeker would type, not a description of this one posting.

## Output
One line per target, in query-id order, UTF-8, no header, three fields separated by a single TAB:

    query-id<TAB>style<TAB>query text

e.g. `jb001<TAB>keyword<TAB>...`. The style is the one printed in the packet. No tabs or line breaks inside the text.
Files:
{outputs}

## Rules
{RULES}
## Styles (definitions from the dev_a set, whose method this set copies)
{styles}
"""


def target_block(qid: str, style: str, row: dict, guide: dict[str, tuple[str, list[str]]]) -> str:
    definition, examples = guide[style]
    lines = [f"## {qid}: style `{style}`", "",
             f"*Style:* {definition}. Examples (from dev_a, another corpus): " + "; ".join(f'"{e}"' for e in examples)]
    if style == "constraint":
        lines.append(f"*Checkable constraints in this target:* {', '.join(checkable_constraints(row))}")
    lines += ["", "| Field | Value |", "|---|---|"]
    for field in ("title", "company", "location", "salary", "work_type", "experience_level"):
        lines.append(f"| {field} | {str(row.get(field) or '-').replace('|', '/')} |")
    lines += ["", f"Description (first {DESCRIPTION_CHARS} characters):", "", excerpt(row["description"], DESCRIPTION_CHARS), "",
              f"Your line: `{qid}<TAB>{style}<TAB>...`", "", "---", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--targets", type=Path, default=DATASET_DIR / "targets.tsv")
    ap.add_argument("--out", type=Path, default=PRIVATE / "packets")
    args = ap.parse_args()

    corpus, targets = load_corpus(args.corpus), read_targets(args.targets)
    guide = style_guide(DEV_A / "README.md", DEV_A / "queries.jsonl")
    qids = sorted(targets)
    batches = {f"batch{i // BATCH_SIZE + 1}": qids[i:i + BATCH_SIZE] for i in range(0, len(qids), BATCH_SIZE)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "INSTRUCTIONS.md").write_text(instructions(list(batches), guide), encoding="utf-8")
    for name, ids in batches.items():
        head = (f"# jobs_b query packet {name}: {ids[0]}-{ids[-1]} ({len(ids)} targets)\n\n"
                f"Read INSTRUCTIONS.md first. Write your lines to {PRIVATE / ('queries_' + name + '.tsv')}.\n\n---\n\n")
        body = "".join(target_block(q, targets[q][1], corpus[targets[q][0]], guide) for q in ids)
        (args.out / f"{name}.md").write_text(head + body, encoding="utf-8")
        print(f"wrote {args.out / (name + '.md')} ({len(ids)} targets)")


if __name__ == "__main__":
    main()
