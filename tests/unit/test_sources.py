from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from ingest.sources import HUB_ADAPTERS, RowError, open_source
from rag_app.errors import SourceError
from tests.conftest import listing_row, write_jsonl


def _rows(src) -> list:
    return list(src.rows)


def test_jsonl_csv_parquet_and_gz_read_the_same(tmp_path: Path) -> None:
    import pandas as pd

    rows = [listing_row(i) for i in range(3)]
    write_jsonl(tmp_path / "a.jsonl", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "a.parquet")
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    for name in ("a.jsonl", "a.csv", "a.parquet", "a.jsonl.gz"):
        got = [dict(r) for _, r in _rows(open_source(str(tmp_path / name)))]
        assert [r["title"] for r in got] == [r["title"] for r in rows], name


def test_row_level_problems_are_row_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"title": "A", "description": "x"}\nnot json\n[1, 2]\n{"title": "caf\xe9", "description": "y"}\n')
    rows = _rows(open_source(str(path)))
    assert isinstance(rows[1][1], RowError) and "invalid JSON" in rows[1][1].reason
    assert isinstance(rows[2][1], RowError) and "JSON object" in rows[2][1].reason
    assert "\udce9" in rows[3][1]["title"]  # undecodable byte kept visible for the row's reject


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "does not exist"),
    ("empty.jsonl", "", "is empty"),
    ("x.txt", "hi", "unsupported type"),
    ("cols.csv", "name,blurb\na,b\n", "no column for title, description"),
])
def test_unreadable_sources_fail_fast_with_one_line(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(SourceError, match=message) as info:
        open_source(str(tmp_path / name))
    assert "\n" not in str(info.value)


def test_unknown_hub_dataset_offline_is_one_clear_line() -> None:
    with pytest.raises(SourceError, match=r"cannot load hub dataset 'nobody/no-such-jobs'.*offline or misspelt") as info:
        open_source("hub:nobody/no-such-jobs")
    assert "\n" not in str(info.value)


def test_linkedin_adapter_maps_the_documented_schema() -> None:
    row = {"job_id": 3884428798, "company_name": "Acme", "title": "Data Analyst", "description": "Analyse data.", "max_salary": 90000.0,
           "pay_period": "YEARLY", "location": "New York, NY", "min_salary": 70000.0, "med_salary": float("nan"),
           "formatted_work_type": "Full-time", "remote_allowed": 1.0, "job_posting_url": "https://www.linkedin.com/jobs/view/3884428798",
           "formatted_experience_level": "Mid-Senior level", "skills_desc": None, "currency": "USD"}
    out = HUB_ADAPTERS["datastax/linkedin_job_listings"](row)
    assert out["id"] == "li-3884428798" and out["company"] == "Acme"
    assert out["salary"] == "$70,000 - $90,000 a year"
    assert out["work_type"] == "Full-time; Remote" and out["experience_level"] == "Mid-Senior level"
    hourly = HUB_ADAPTERS["datastax/linkedin_job_listings"]({**row, "min_salary": float("nan"), "max_salary": float("nan"),
                                                           "med_salary": 22.5, "pay_period": "HOURLY", "remote_allowed": float("nan")})
    assert hourly["salary"] == "$22.50 an hour" and hourly["work_type"] == "Full-time"


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz", "bom.csv", "bom.csv.gz", "bom.tsv"])
def test_a_byte_order_mark_does_not_cost_the_first_row(tmp_path: Path, name: str) -> None:
    import pandas as pd

    rows = [listing_row(i) for i in range(2)]
    if ".jsonl" in name:
        text = "".join(json.dumps(r) + "\n" for r in rows)
    else:
        text = pd.DataFrame(rows).to_csv(index=False, sep="\t" if name.endswith(".tsv") else ",")
    data = b"\xef\xbb\xbf" + text.encode() + (b'{"title": "caf\xe9", "description": "y"}\n' if ".jsonl" in name else b"")
    (tmp_path / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    src = open_source(str(tmp_path / name))
    got = _rows(src)
    assert not any(isinstance(r, RowError) for _, r in got), got[0]
    assert [r["title"] for _, r in got[:2]] == [r["title"] for r in rows] and src.mapping["id"] == "id"
    if ".jsonl" in name:
        assert "\udce9" in got[2][1]["title"]  # bad bytes after the mark still surface for the row's reject
