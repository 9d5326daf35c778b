"""Edge: read request logs (JSONL, Parquet, SQLite, PostgreSQL) and billing attributes from disk.

Every row goes through the canonical validation of :mod:`distillguard.analytics.log_record`
(``loads_line`` / ``validate_record``), so the activity we export from and match on is what a
``scan`` accepts; rejected rows are skipped here (``scan`` is where they are quarantined and
counted).
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distillguard.analytics.log_record import LogRecord, loads_line, validate_record
from distillguard.errors import InputError, missing_extra
from distillguard.intel.activity import AccountActivity, AccountAttributes, collect_activity, parse_attributes

__all__ = ["iter_records", "read_activity", "read_attributes"]


def _from_row(row: dict[str, Any]) -> LogRecord | None:
    # Database columns hold params / messages as JSON text.
    raw = {k: v for k, v in row.items() if v is not None}
    for key in ("params", "messages"):
        if isinstance(raw.get(key), str):
            try:
                raw[key] = json.loads(raw[key])
            except json.JSONDecodeError:
                raw.pop(key)
    rec = validate_record(raw)
    return rec if isinstance(rec, LogRecord) else None


def _jsonl(path: Path) -> Iterator[LogRecord]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line.strip() and isinstance(rec := loads_line(line), LogRecord):
                yield rec


def _sqlite(url: str) -> Iterator[LogRecord]:
    db = url.removeprefix("sqlite:///")
    if not Path(db).is_file():
        raise InputError(f"The SQLite database {db!r} does not exist.")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        try:
            cur = con.execute("SELECT * FROM request_log")
        except sqlite3.OperationalError as exc:
            raise InputError(f"Cannot read table request_log from {db!r}: {exc}.") from None
        for r in cur:
            if (rec := _from_row(dict(r))) is not None:
                yield rec
    finally:
        con.close()


def _postgres(url: str) -> Iterator[LogRecord]:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("psycopg", "gateway") from exc
    try:
        con = psycopg.connect(url, row_factory=dict_row, connect_timeout=5)
    except psycopg.Error as exc:
        raise InputError(f"Cannot connect to the PostgreSQL log: {exc}") from None
    with con, con.cursor(name="dg_intel") as cur:
        cur.execute("SELECT * FROM request_log")
        for r in cur:
            if (rec := _from_row(dict(r))) is not None:
                yield rec


def _parquet(path: Path) -> Iterator[LogRecord]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("pyarrow", "analytics") from exc
    for batch in pq.ParquetFile(path).iter_batches(batch_size=50_000):
        for row in batch.to_pylist():
            if (rec := _from_row(row)) is not None:
                yield rec


def iter_records(sources: list[str]) -> Iterator[LogRecord]:
    """Yield the valid records of JSONL(.gz) / Parquet paths and sqlite:/// / postgresql:// URLs.

    Raises :class:`InputError` for a path that does not exist.
    """
    for spec in sources:
        if spec.startswith("sqlite:///"):
            yield from _sqlite(spec)
        elif spec.startswith(("postgresql://", "postgres://")):
            yield from _postgres(spec)
        else:
            path = Path(spec)
            if not path.is_file():
                raise InputError(
                    f"The log {spec!r} does not exist or is not a file. Expected a JSONL or "
                    "Parquet path, or a sqlite:///path.db / postgresql:// URL."
                )
            yield from (_parquet(path) if path.suffix == ".parquet" else _jsonl(path))


def read_attributes(path: Path) -> dict[str, AccountAttributes]:
    """Read ``account_id,email,payment_fingerprint`` rows from a CSV or JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Cannot read the attributes file {str(path)!r}: {exc}.") from None
    if path.suffix in (".jsonl", ".json"):
        rows = []
        for i, line in enumerate(text.split("\n"), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InputError(f"{path}:{i}: not valid JSON ({exc.msg})") from None
        return parse_attributes(r for r in rows if isinstance(r, dict))
    return parse_attributes(csv.DictReader(text.splitlines()))


def read_activity(sources: list[str], attributes: Path | None = None) -> dict[str, AccountActivity]:
    """Return per-account activity from log sources (raises :class:`InputError` if none is valid)."""
    attrs = read_attributes(attributes) if attributes else None
    act = collect_activity(iter_records(sources), attrs)
    if not act:
        raise InputError(f"No valid request in {', '.join(sources)}.")
    return act
