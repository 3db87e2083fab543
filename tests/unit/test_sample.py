"""The bundled sample is our own data and must stay varied enough to demo and fine-tune on."""

from __future__ import annotations

import json
import re
from collections import Counter

from ingest.sample import generate, vocab
from ingest.sources import SAMPLE_PATH


def _rows() -> list[dict]:
    return [json.loads(line) for line in SAMPLE_PATH.read_text(encoding="utf-8").splitlines()]


def test_committed_sample_is_what_the_generator_writes() -> None:
    assert _rows() == json.loads(json.dumps(generate.generate()))


def test_sample_is_varied_and_realistic() -> None:
    rows = [r for r in _rows() if "repost" not in r["id"]]
    assert len(rows) >= 300
    assert len(vocab.OCCUPATIONS) >= 20 and len({r["company"].split()[-1] for r in rows}) >= 15
    workplaces = Counter(r["work_type"].split("; ")[1] for r in rows)
    assert set(workplaces) == {"Remote", "Hybrid", "On-site"} and min(workplaces.values()) >= 20
    us = sum(bool(re.search(r", [A-Z]{2}$", r["location"])) for r in rows)
    assert 0.5 * len(rows) < us < 0.9 * len(rows)  # US and non-US
    assert len({r["experience_level"] for r in rows}) == 4
    assert {"an hour", "a year"} <= {s.split()[-2] + " " + s.split()[-1] for r in rows if (s := r["salary"])}
    assert all(1000 <= len(r["description"]) <= 4000 for r in rows)
