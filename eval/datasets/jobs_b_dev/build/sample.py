"""Sample ~80 diverse target postings from jobs_b and pre-assign query styles (stage 1 of the jobs_b dev set).

Reproduces dev_a's target-sampling method on jobs_b (see eval/datasets/jobs_b_dev/README.md):
  1. read jobs_b.jsonl sorted by id, shuffle with random.Random(SAMPLE_SEED);
  2. take candidates greedily, skipping one whose company already has a target, whose role family is full, or whose
     title is near-identical to a chosen title *with the same industry tag* (the tag comes from description keywords:
     it lets a few plain "Data Scientist" / "Data Analyst" postings in, one per industry);
  3. assign the styles 28 keyword / 28 natural / 12 constraint / 12 paraphrase with random.Random(STYLE_SEED),
     re-drawn (next shuffle of the same generator) until every constraint-style target has a checkable constraint.

Writes targets.tsv (query-id, corpus-id, style: ids only) and, outside the repo, a detail file for the packets.

    python eval/datasets/jobs_b_dev/build/sample.py --corpus /work/shared/data/jobs/jobs_b.jsonl \
        --out eval/datasets/jobs_b_dev/targets.tsv --detail /work/jobsb/targets_detail.tsv
"""

from __future__ import annotations

import argparse
import collections
import random
import re
from pathlib import Path

from common import CORPUS, DATASET_DIR, PRIVATE, load_corpus, write_tsv

SAMPLE_SEED = 20180722
STYLE_SEED = 20180723
N_TARGETS = 80
STYLE_COUNTS = {"keyword": 28, "natural": 28, "constraint": 12, "paraphrase": 12}
JACCARD_MAX = 0.5  # titles with token Jaccard >= this are near-identical

# Role families: first match on the lower-cased title wins, so specific families come before generic ones.
# (name, title regex, cap)
FAMILIES: list[tuple[str, str, int]] = [
    ("intern_early_career", r"\bintern(ship)?s?\b|returnship|ready to return|\bco-?op\b|\bfellow|"
                            r"(new|university|recent|college) grad", 3),
    ("leadership", r"\bdirector\b|\bhead of\b|\bvp\b|vice president|\bchief\b|\bmanager\b|\bmanagers\b", 4),
    ("ml_ai", r"machine learning|deep learning|\bml\b|\bai\b|\bnlp\b|computer vision|artificial intelligence", 4),
    ("other_scientist", r"^(?!.*data scien).*\bscientists?\b", 3),  # research/applied/lab scientists
    ("big_data", r"big data|hadoop|\bspark\b|\bhive\b", 3),
    ("data_engineering", r"data engineer|\betl\b|pipelin|warehouse|\bedw\b|architect|data platform", 3),
    ("software_qa", r"software|developer|programmer|\bqa\b|\bqe\b|test engineer|devops|frontend|backend", 3),
    ("consulting", r"consultant|consulting|advisory|solutions", 2),
    ("security_fraud", r"security|fraud|cyber|\btrust\b|abuse|infosec|risk|audit", 3),
    ("government_public", r"\bfbi\b|\bdea\b|county|police|\bstate\b|public (sector|health|policy)|city of|"
                          r"judicial|grants", 2),
    ("hr_people", r"\bhr\b|hris|people|human resources|payroll|workforce|talent", 2),
    ("clinical_health", r"clinical|health|medical|biomed|bioinformatic|pharma|patient|hospital|genom|bio", 4),
    ("financial", r"financ|fp&a|accounting|pricing|equity|invest|credit|banking|royalt|revenue|wealth", 4),
    ("marketing_media", r"marketing|\bmarket\b|media|digital|\bcrm\b|growth|advertis|campaign|customer|insight|"
                        r"\bweb\b|seo|social", 4),
    ("product", r"\bproduct\b", 2),
    ("bi_reporting", r"business intelligence|\bbi\b|tableau|reporting|report|visuali[sz]|dashboard", 3),
    ("data_quality_governance", r"quality|governance|\bmdm\b|master data|data management|integrity|migration|"
                                r"metadata|integration", 2),
    ("operations_sales", r"operations|\bops\b|sales|supply chain|logistic|inventory|planning", 2),
    ("research_statistics", r"research|statistic", 3),
    ("business_analyst", r"business analyst|business systems|systems analyst|business/data|business data|"
                         r"business process", 3),
    ("senior_data_scientist", r"\b(senior|sr|lead|principal|staff)\b.*data scien", 4),
    ("data_scientist", r"data scien", 6),
    ("senior_data_analyst", r"\b(senior|sr|lead)\b.*data analy", 3),
    ("data_analyst", r"data analy|analytics", 6),
    ("other_analyst", r"analyst", 2),
    ("other", r".", 2),
]

# Industry tag from the description: the tag with most keyword hits (ties broken by list order; none -> "general").
INDUSTRIES: list[tuple[str, str]] = [
    ("health_bio", r"\bhealth|clinical|patient|hospital|pharma|biotech|medical|genom|therapeut|drug"),
    ("finance_insurance", r"\bbank|financial services|fintech|insurance|lending|credit|payments?\b|invest|trading"),
    ("ads_marketing", r"advertis|\bads\b|marketing|campaign|brand"),
    ("retail_ecommerce", r"retail|e-?commerce|shopping|merchandis|consumer goods|apparel|fashion"),
    ("media_games", r"\bgames?\b|gaming|entertainment|\bmedia\b|music|video|film|studio|streaming"),
    ("public_education", r"government|\bcounty\b|\bpublic sector|federal|university|school|nonprofit|non-profit"),
    ("mobility_logistics", r"transportation|logistic|supply chain|rideshar|autonomous|vehicle|delivery|freight"),
    ("security", r"security|fraud|cyber|threat"),
    ("hardware_semis", r"semiconductor|hardware|chip|silicon|device|sensor|manufactur"),
    ("energy_environment", r"\benergy|utilit|solar|climate|oil|environmental"),
    ("real_estate", r"real estate|property|mortgage|housing"),
    ("consulting_services", r"consulting|clients?\b|professional services"),
]

# Seniority/filler words dropped from a title to get its "core" title.
FILLER = {
    "senior", "sr", "jr", "junior", "lead", "principal", "staff", "associate", "entry", "level", "i", "ii", "iii",
    "iv", "1", "2", "3", "4", "part", "time", "full", "contract", "temp", "temporary", "remote", "the", "and", "of",
    "a", "an", "for", "in", "with", "job", "ca", "san", "francisco", "los", "angeles", "diego", "jose", "bay", "area",
    "mountain", "view", "oakland", "irvine", "sunnyvale", "santa", "clara", "monica", "palo", "alto",
}
NON_CITY = {"ca", "california", "us", "usa", "united", "states", "us-ca", "rws"}
CHECKABLE_WORK = re.compile(r"contract|part-time|internship|temporary|volunteer", re.I)


def title_tokens(title: str) -> list[str]:
    """Lower-cased title words; requisition codes in brackets and bare numbers of 3+ digits are dropped."""
    title = re.sub(r"\([^)]*\d[^)]*\)|#?\b\w*\d{3,}\w*\b", " ", title.lower())
    return re.findall(r"[a-z0-9&+]+", title)


def core_title(title: str) -> tuple[str, ...]:
    return tuple(sorted(set(title_tokens(title)) - FILLER))


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def family_of(title: str) -> str:
    low = title.lower()
    return next(name for name, rx, _ in FAMILIES if re.search(rx, low))


def industry_of(description: str) -> str:
    low = description.lower()
    hits = [(len(re.findall(rx, low)), -i, name) for i, (name, rx) in enumerate(INDUSTRIES)]
    best = max(hits)
    return best[2] if best[0] >= 2 else "general"


def checkable_constraints(row: dict) -> list[str]:
    """Hard constraints a constraint-style query could state and a grader could check from the packet."""
    out = []
    words = set(re.findall(r"[a-z][a-z-]*", row["location"].lower()))
    if "remote" in words:
        out.append("remote")
    elif words - NON_CITY - {"greater", "area"} or "area" in words:
        out.append("city/metro")
    if row.get("work_type") and CHECKABLE_WORK.search(row["work_type"]):
        out.append("work_type")
    if row.get("experience_level"):
        out.append("seniority")
    if row.get("salary"):
        out.append("pay")
    return out


def choose(rows: list[dict]) -> list[dict]:
    """Greedy pass over the shuffled rows with the company, family-cap and near-identical-title rules."""
    caps = {name: cap for name, _, cap in FAMILIES}
    used: collections.Counter[str] = collections.Counter()
    chosen: list[dict] = []
    companies: set[str] = set()
    scanned = 0
    for row in rows:
        scanned += 1
        fam, ind = family_of(row["title"]), industry_of(row["description"])
        company = row["company"].strip().lower()
        if used[fam] >= caps[fam] or company in companies:
            continue
        toks, core = set(title_tokens(row["title"])), core_title(row["title"])
        if any(c["industry"] == ind and (jaccard(toks, set(title_tokens(c["title"]))) >= JACCARD_MAX
                                         or core == core_title(c["title"])) for c in chosen):
            continue
        chosen.append({**row, "family": fam, "industry": ind})
        used[fam] += 1
        companies.add(company)
        if len(chosen) == N_TARGETS:
            break
    print(f"greedy pass scanned {scanned} of {len(rows)} shuffled rows")
    return chosen


def assign_styles(targets: list[dict]) -> tuple[list[str], int]:
    """Seeded style shuffle, re-drawn until each constraint-style target has a checkable constraint."""
    rng = random.Random(STYLE_SEED)
    styles = [s for s, n in STYLE_COUNTS.items() for _ in range(n)]
    for draw in range(1, 1001):
        rng.shuffle(styles)
        if all(checkable_constraints(t) for t, s in zip(targets, styles) if s == "constraint"):
            return list(styles), draw
    raise SystemExit("no valid style assignment in 1000 draws")


def summarise(targets: list[dict], styles: list[str], draws: int) -> None:
    def show(label: str, values: list[str]) -> None:
        print(f"{label}: " + ", ".join(f"{k} {n}" for k, n in collections.Counter(values).most_common()))

    print(f"{len(targets)} targets; style draws: {draws}")
    show("families", [t["family"] for t in targets])
    show("industries", [t["industry"] for t in targets])
    show("styles", styles)
    show("sources", [t["source"] for t in targets])
    show("seniority", [t.get("experience_level") or "-" for t in targets])
    show("work_type", [t.get("work_type") or "-" for t in targets])
    show("cities", [re.split(r",", t["location"])[0] for t in targets])
    print("with salary:", sum(bool(t.get("salary")) for t in targets))
    print("constraint-style checkable:", [",".join(checkable_constraints(t)) for t, s in zip(targets, styles)
                                          if s == "constraint"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--out", type=Path, default=DATASET_DIR / "targets.tsv")
    ap.add_argument("--detail", type=Path, default=PRIVATE / "targets_detail.tsv",
                    help="outside the repo: query-id, id, style, family, industry, checkable constraints")
    args = ap.parse_args()

    rows = list(load_corpus(args.corpus).values())  # sorted by id
    random.Random(SAMPLE_SEED).shuffle(rows)
    targets = choose(rows)
    styles, draws = assign_styles(targets)
    qids = [f"jb{i:03d}" for i in range(1, len(targets) + 1)]
    write_tsv(args.out, ["query-id", "corpus-id", "style"], [[q, t["id"], s] for q, t, s in zip(qids, targets, styles)])
    write_tsv(args.detail, ["query-id", "corpus-id", "style", "family", "industry", "checkable"],
              [[q, t["id"], s, t["family"], t["industry"], ",".join(checkable_constraints(t))]
               for q, t, s in zip(qids, targets, styles)])
    summarise(targets, styles, draws)
    print(f"wrote {args.out} and {args.detail}")


if __name__ == "__main__":
    main()
