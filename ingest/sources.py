"""Sources of raw listing rows: the bundled sample, CSV/TSV, JSONL (optionally .gz), Parquet and `hub:NAME[@split]`.

`open_source` fails fast with a one-line `SourceError` for a source that cannot be read at all (missing path,
unsupported suffix, empty file, no title/description column, unreachable hub dataset). Row-level problems
(invalid JSON, bytes that are not UTF-8) travel as `RowError` so the pipeline can reject that row and go on.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ingest.clean import FIELDS, resolve_columns
from rag_app.errors import SourceError

logger = logging.getLogger(__name__)
SAMPLE_PATH = Path(__file__).with_name("sample") / "listings.jsonl"
SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".csv", ".tsv", ".csv.gz", ".parquet")


@dataclass(frozen=True)
class RowError:
    reason: str


@dataclass
class Source:
    name: str
    mapping: dict[str, str]
    rows: Iterator[tuple[int, Mapping[str, Any] | RowError]]


def open_source(spec: str, column_map: Mapping[str, str] | None = None, limit: int | None = None) -> Source:
    """Open `spec` ('sample', a file path, or 'hub:NAME[@split]') and resolve its columns to listing fields."""
    column_map = dict(column_map or {})
    if spec.startswith("hub:"):
        return _hub_source(spec[4:], column_map, limit)
    return _file_source(local_path(spec), column_map, name=spec)


def local_path(spec: str | Path) -> Path:
    """The file a local source names: 'sample' is the bundled listings, anything else a path."""
    return SAMPLE_PATH if str(spec) == "sample" else Path(spec).expanduser()


def _file_source(path: Path, column_map: dict[str, str], name: str) -> Source:
    if not path.exists():
        raise SourceError(f"source {name!r} does not exist (give a CSV/JSONL/Parquet path, 'sample', or hub:NAME)")
    if path.is_dir():
        raise SourceError(f"source {name!r} is a directory; give a file ({', '.join(SUFFIXES)})")
    suffix = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    readers: dict[str, Callable[[Path], Iterator[tuple[int, Mapping[str, Any] | RowError]]]] = {
        ".jsonl": _jsonl_rows, ".ndjson": _jsonl_rows, ".jsonl.gz": _jsonl_rows, ".json": _jsonl_rows,
        ".csv": _csv_rows, ".tsv": _csv_rows, ".csv.gz": _csv_rows, ".parquet": _parquet_rows,
    }
    if suffix.lower() not in readers:
        raise SourceError(f"source {name!r} has unsupported type {suffix or '(none)'!r}; supported: {', '.join(SUFFIXES)}")
    rows = readers[suffix.lower()](path)
    head = list(islice(rows, 50))
    if not head:
        raise SourceError(f"source {name!r} is empty: no rows")
    columns = list(dict.fromkeys(k for _, r in head if not isinstance(r, RowError) for k in r))
    try:
        mapping = resolve_columns(columns, column_map) if columns else {}
    except ValueError as exc:
        raise SourceError(f"source {name!r}: {exc}") from None
    return Source(name=name, mapping=mapping, rows=_chain(head, rows))


def _chain(head: list, rest: Iterator) -> Iterator:
    yield from head
    yield from rest


def _open_text(path: Path, newline: str | None = None):
    # utf-8-sig drops a leading byte-order mark (Excel and Windows tools write one) that would otherwise spoil the first
    # row's JSON or the first CSV column's name; surrogateescape keeps undecodable bytes visible to validation instead
    # of failing the whole file
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig", errors="surrogateescape", newline=newline)
    return path.open(encoding="utf-8-sig", errors="surrogateescape", newline=newline)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | RowError]]:
    with _open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, RowError(f"invalid JSON ({exc.msg} at column {exc.colno})")
                continue
            yield line_no, row if isinstance(row, dict) else RowError(f"expected a JSON object, got {type(row).__name__}")


def _csv_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | RowError]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    delimiter = "\t" if ".tsv" in path.suffixes else ","
    with _open_text(path, newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        for row_no, row in enumerate(reader, start=2):  # header is line 1
            if None in row:
                yield row_no, RowError(f"row has {len(row) - 1 + len(row[None])} fields, header has {len(reader.fieldnames or [])}")
                continue
            yield row_no, row


def _parquet_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any] | RowError]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:
        raise SourceError(f"source {str(path)!r} is not a readable Parquet file: {exc}") from None
    row_no = 0
    for batch in parquet.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            row_no += 1
            yield row_no, row


# -- hub datasets ------------------------------------------------------------------------------------------------
def _linkedin_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """datastax/linkedin_job_listings (LinkedIn 2023-24 postings.csv, 31 columns) -> listing fields."""

    def num(key: str) -> float | None:
        value = row.get(key)
        return None if value is None or value != value else float(value)  # NaN != NaN

    lo, med, hi = num("min_salary"), num("med_salary"), num("max_salary")
    period = {"YEARLY": "a year", "HOURLY": "an hour", "MONTHLY": "a month", "WEEKLY": "a week", "BIWEEKLY": "every two weeks"}
    cur = "$" if (row.get("currency") or "USD") == "USD" else f"{row.get('currency')} "
    amounts = [a for a in (lo, hi) if a is not None] or ([med] if med is not None else [])
    salary = None
    if amounts:
        salary = " - ".join(f"{cur}{a:,.0f}" if a >= 1000 else f"{cur}{a:,.2f}" for a in amounts)
        salary += f" {period.get(str(row.get('pay_period') or '').upper(), '')}".rstrip()
    work_type = row.get("formatted_work_type")
    if num("remote_allowed") == 1.0:
        work_type = f"{work_type}; Remote" if work_type else "Remote"
    return {"id": f"li-{row.get('job_id')}", "title": row.get("title"), "company": row.get("company_name"),
            "location": row.get("location"), "description": row.get("description"), "skills": row.get("skills_desc"),
            "salary": salary, "work_type": work_type, "experience_level": row.get("formatted_experience_level"),
            "url": row.get("job_posting_url"), "source": "linkedin-2023-24"}


HUB_ADAPTERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "datastax/linkedin_job_listings": _linkedin_row,
}


def _hub_source(ref: str, column_map: dict[str, str], limit: int | None) -> Source:
    name, _, split = ref.partition("@")
    try:
        import datasets

        ds = datasets.load_dataset(name, split=split or "train", streaming=limit is not None)
    except Exception as exc:  # datasets raises many types: offline, not found, gated
        first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        raise SourceError(f"cannot load hub dataset {name!r} ({exc.__class__.__name__}: {first[:200]}); "
                          "offline or misspelt? download it once with internet, or export it to a local file") from None
    adapter = HUB_ADAPTERS.get(name)
    rows = ((i, adapter(r) if adapter else r) for i, r in enumerate(ds, start=1))
    head = list(islice(rows, 50))
    if not head:
        raise SourceError(f"hub dataset {name!r} has no rows in split {split or 'train'!r}")
    columns = list(FIELDS) if adapter else list(head[0][1])
    try:
        mapping = resolve_columns([c for c in columns if c in head[0][1]], {} if adapter else column_map)
    except ValueError as exc:
        raise SourceError(f"hub dataset {name!r}: {exc}") from None
    return Source(name=f"hub:{ref}", mapping=mapping, rows=_chain(head, rows))
