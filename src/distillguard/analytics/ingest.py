"""Read request logs (JSONL, Parquet, SQLite, PostgreSQL), validate, quarantine bad rows.

Every input row ends up either in the staged Parquet file the engines scan or in the
quarantine JSONL file with its reason; :class:`IngestResult` counts both, so nothing is
silently dropped. Edge module: pyarrow (and psycopg for PostgreSQL) are imported lazily.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillguard.analytics.log_record import LogRecord, Rejection, loads_line, validate_record
from distillguard.errors import InputError

__all__ = ["STAGED_SCHEMA_FIELDS", "IngestResult", "ingest"]

STAGED_SCHEMA_FIELDS: tuple[tuple[str, str], ...] = (
    ("ts", "float64"),
    ("account_id", "string"),
    ("prompt", "string"),
    ("n_turns", "int64"),
    ("ip", "string"),
    ("user_agent", "string"),
    ("endpoint", "string"),
    ("model", "string"),
    ("temperature", "float64"),
    ("max_tokens", "int64"),
    ("n", "int64"),
    ("logprobs", "bool"),
    ("top_logprobs", "int64"),
)
_BATCH = 50_000


@dataclass
class IngestResult:
    """Counts of accepted and quarantined rows, by reason."""

    accepted: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    staged_path: Path | None = None
    quarantine_path: Path | None = None

    def skipped_summary(self) -> dict[str, Any]:
        """Return the ``skipped`` block of report.json."""
        return {
            "total": sum(self.skipped.values()),
            "by_reason": dict(sorted(self.skipped.items())),
            "quarantine_file": str(self.quarantine_path) if self.quarantine_path else None,
        }


def _iter_jsonl(path: Path) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip(b"\r\n")
            if not line.strip():
                continue
            yield f"{path}:{lineno}", loads_line(line), line


def _row_to_raw(row: dict[str, Any]) -> dict[str, Any]:
    # Database columns hold params / messages as JSON text.
    out = {k: v for k, v in row.items() if v is not None}
    for key in ("params", "messages"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except json.JSONDecodeError:
                out[key] = None if key == "params" else out[key]
    return out


def _iter_rows(
    rows: Iterator[dict[str, Any]], where: str
) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    for i, row in enumerate(rows, 1):
        raw = _row_to_raw(row)
        yield f"{where}#{i}", validate_record(raw), json.dumps(raw, default=str).encode()


def _iter_parquet(path: Path) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=_BATCH):
        yield from _iter_rows(iter(batch.to_pylist()), str(path))


def _iter_sqlite(url: str) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    db = url.removeprefix("sqlite:///")
    if not Path(db).exists():
        raise InputError(f"The SQLite database {db!r} does not exist.")
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        cur = con.execute("SELECT * FROM request_log")
    except sqlite3.OperationalError as exc:
        raise InputError(f"Cannot read table request_log from {db!r}: {exc}.") from None
    try:
        yield from _iter_rows((dict(r) for r in cur), url)
    finally:
        con.close()


def _iter_postgres(url: str) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    try:
        import psycopg
        from psycopg.rows import dict_row
    except ImportError as exc:  # pragma: no cover - depends on the install
        from distillguard.errors import missing_extra

        raise missing_extra("psycopg", "gateway") from exc
    with psycopg.connect(url, row_factory=dict_row) as con, con.cursor(name="dg_scan") as cur:
        cur.execute("SELECT * FROM request_log")
        yield from _iter_rows(iter(cur), "postgresql")


def _source(spec: str) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    if spec.startswith("sqlite:///"):
        return _iter_sqlite(spec)
    if spec.startswith(("postgresql://", "postgres://")):
        return _iter_postgres(spec)
    path = Path(spec)
    if not path.is_file():
        raise InputError(
            f"The log {spec!r} does not exist or is not a file. Expected a JSONL or "
            "Parquet path, or a sqlite:///path.db / postgresql:// URL."
        )
    if path.suffix == ".parquet":
        return _iter_parquet(path)
    return _iter_jsonl(path)


def ingest(
    sources: list[str], workdir: Path, *, quarantine: Path | None = None, progress: bool = False
) -> IngestResult:
    """Validate every row of ``sources``; stage good rows as Parquet, bad ones to quarantine.

    Returns an :class:`IngestResult` whose ``staged_path`` is a Parquet file with the columns of
    :data:`STAGED_SCHEMA_FIELDS`. Raises :class:`InputError` for a missing source, or when no row
    at all is valid.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    schema = pa.schema([(n, t) for n, t in STAGED_SCHEMA_FIELDS])
    workdir.mkdir(parents=True, exist_ok=True)
    qpath = quarantine or workdir / "quarantine.jsonl"
    result = IngestResult(
        staged_path=workdir / "staged.parquet", quarantine_path=quarantine or workdir / "quarantine.jsonl"
    )
    iters = [_source(s) for s in sources]  # fail fast on a missing path
    writer = pq.ParquetWriter(result.staged_path, schema)
    buf: list[dict[str, Any]] = []
    bar = tqdm(desc="ingest", unit=" rows", disable=not progress, mininterval=0.5)
    with open(qpath, "w", encoding="utf-8") as qfh:
        for it in iters:
            for where, rec, line in it:
                bar.update(1)
                if isinstance(rec, Rejection):
                    result.skipped[rec.reason] += 1
                    qfh.write(
                        json.dumps(
                            {
                                "where": where,
                                "reason": rec.reason,
                                "detail": rec.detail,
                                "line": line[:2000].decode("utf-8", "replace"),
                            }
                        )
                        + "\n"
                    )
                    continue
                buf.append(rec.flat())
                result.accepted += 1
                if len(buf) >= _BATCH:
                    writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                    buf.clear()
    if buf:
        writer.write_table(pa.Table.from_pylist(buf, schema=schema))
    writer.close()
    bar.close()
    if result.accepted == 0:
        raise InputError(
            f"No valid request in {', '.join(sources)}: {sum(result.skipped.values())} "
            f"rows were quarantined to {result.quarantine_path} "
            f"({dict(result.skipped)})."
        )
    return result
