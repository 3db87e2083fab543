"""Write the bundled sample of job listings (our own synthetic postings, deterministic by seed).

    python -m ingest.sample.generate            # rewrites ingest/sample/listings.jsonl

The sample spans every occupation in `vocab.OCCUPATIONS`, US and non-US places, remote/hybrid/on-site, hourly and
annual pay and four seniority levels. A handful of exact reposts are included on purpose: ingestion must dedupe them.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ingest.sample import vocab

SAMPLE_PATH = Path(__file__).with_name("listings.jsonl")
N_LISTINGS = 330
N_REPOSTS = 6


def _money(amount: float, symbol: str, hourly: bool) -> str:
    return f"{symbol}{amount:,.2f}".replace(".00", "") if hourly else f"{symbol}{round(amount, -3):,.0f}"


def _salary(rng: random.Random, occ: dict, mult: float, symbol: str) -> str | None:
    if rng.random() < 0.15:
        return None  # many real postings omit pay
    lo, hi = occ["pay"]
    hourly = bool(occ.get("hourly"))
    low = rng.uniform(lo, lo + (hi - lo) * 0.6) * mult
    high = low * rng.uniform(1.1, 1.45)
    period = "an hour" if hourly else "a year"
    if rng.random() < 0.2:
        return f"From {_money(low, symbol, hourly)} {period}"
    return f"{_money(low, symbol, hourly)} - {_money(high, symbol, hourly)} {period}"


def _paragraphs(rng: random.Random, occ: dict, listing: dict, years_exp: str, schedule: str | None) -> str:
    industry = occ["industry"]
    intro = rng.choice(vocab.INTROS).format(
        company=listing["company"], adj=rng.choice(vocab.ADJECTIVES), industry=industry, industry_l=industry.lower(),
        city=listing["location"].split(",")[0], years=rng.randint(5, 60), title=listing["title"])
    duties = rng.sample(occ["duties"], k=min(len(occ["duties"]), rng.randint(4, 7)))
    reqs = list(occ["reqs"])
    skills = rng.sample(occ["skills"], k=min(len(occ["skills"]), rng.randint(3, 6)))
    benefits = rng.sample(vocab.BENEFITS, k=rng.randint(3, 6))
    workplace = listing["work_type"].split("; ")[-1]
    where = {"Remote": "This role is fully remote; you can work from anywhere in the listed country.",
             "Hybrid": f"This is a hybrid role: three days a week in our {listing['location'].split(',')[0]} office.",
             "On-site": f"This role is on-site at our {listing['location'].split(',')[0]} location."}[workplace]
    parts = [
        intro,
        f"About the role\nAs our {listing['title']}, you will {duties[0]}. {where} "
        + rng.choice(vocab.TEAM_LINES).format(n=rng.randint(4, 40), boss=rng.choice(vocab.BOSSES)),
        "What you will do\n" + "\n".join(f"- {d[0].upper()}{d[1:]}" for d in duties[1:]),
        "What you bring\n" + "\n".join(f"- {r[0].upper()}{r[1:]}" for r in reqs) + f"\n- {years_exp} years of relevant experience",
        "Tools and skills\n" + ", ".join(skills),
    ]
    parts.append("Your first 90 days\n" + " ".join(vocab.FIRST_90))
    parts.append("Growth and culture\n" + " ".join(rng.sample(vocab.GROWTH, k=2) + rng.sample(vocab.CULTURE, k=2)))
    if schedule:
        parts.append(f"Schedule\n{schedule}")
    pay = listing["salary"] or "Competitive, discussed at the first interview"
    parts.append(f"Pay and benefits\nPay: {pay}. We also offer " + ", ".join(benefits[:-1]) + f" and {benefits[-1]}.")
    if rng.random() < 0.5:
        parts.append("How to apply\nSend a short note about a piece of work you are proud of. We reply to every applicant within two weeks.")
    parts.append(f"{listing['company']} is an equal opportunity employer. We welcome applicants of every background and "
                 "provide reasonable accommodations during the hiring process.")
    return "\n\n".join(parts)


def make_listing(rng: random.Random, index: int) -> dict:
    occ = vocab.OCCUPATIONS[index % len(vocab.OCCUPATIONS)]
    level, prefix, level_mult, years_exp = rng.choice(vocab.SENIORITY)
    base_title = rng.choice(occ["titles"])
    title = base_title if any(w in base_title for w in ("Senior", "Lead", "Executive", "Apprentice", "Junior")) else prefix + base_title
    if rng.random() < 0.7:
        location, symbol, mult = rng.choice(vocab.US_PLACES), "$", 1.0
    else:
        location, symbol, _code, mult = rng.choice(vocab.INTL_PLACES)
    workplace = rng.choice(occ["modes"])
    if workplace == "Remote" and rng.random() < 0.4:
        location = f"Remote ({location.split(', ')[-1] if ', ' in location else location})"
    employment = "Part-time" if occ.get("hourly") and rng.random() < 0.3 else rng.choice(vocab.EMPLOYMENT)
    company = f"{rng.choice(vocab.EMPLOYER_WORDS)} {rng.choice(vocab.EMPLOYER_SUFFIX[occ['industry']])}"
    schedule = rng.choice(occ["schedules"]) if occ.get("schedules") else None
    listing = {
        "id": f"sample-{index:04d}", "title": title, "company": company, "location": location,
        "salary": _salary(rng, occ, mult * level_mult, symbol), "work_type": f"{employment}; {workplace}",
        "experience_level": level, "skills": None, "url": f"https://jobs.example.com/sample-{index:04d}", "source": "jobrag-sample",
    }
    listing["description"] = _paragraphs(rng, occ, listing, years_exp, schedule)
    listing["skills"] = [s for s in occ["skills"] if s in listing["description"]]
    return listing


def generate(seed: int = 7, n: int = N_LISTINGS, reposts: int = N_REPOSTS) -> list[dict]:
    rng = random.Random(seed)
    listings = [make_listing(rng, i) for i in range(n)]
    for j, original in enumerate(rng.sample(listings, k=reposts)):
        listings.append({**original, "id": f"sample-repost-{j:02d}", "url": original["url"] + "?repost=1"})
    return listings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=SAMPLE_PATH)
    args = parser.parse_args()
    rows = generate(args.seed)
    with args.out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} listings to {args.out}")


if __name__ == "__main__":
    main()
