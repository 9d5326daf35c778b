"""Read request logs (JSONL, Parquet, SQLite, PostgreSQL), validate, quarantine bad rows.

Every input row ends up either in the staged Parquet files the engines scan (a directory) or
in the quarantine JSONL file with its reason; :class:`IngestResult` counts both, so nothing is
silently dropped. A JSONL file is parsed by DuckDB's own parallel reader and checked by SQL
(:mod:`.jsonl_native`, :mod:`.jsonl_fast`); every line the SQL does not accept is found in the
file and decided by :func:`validate_record`. Should DuckDB's reader and the walk over the file
disagree about which line is which, the file is read again in byte chunks, each chunk's lines
checked by the same SQL (the exact path). Other sources go row by row through
:func:`validate_record`. Prompts are staged as the ends the features read
(:func:`.jsonl_fast.staged_prompt`). Edge module: pyarrow, duckdb (and psycopg for PostgreSQL)
are imported lazily.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillguard.analytics.jsonl_fast import staged_prompt
from distillguard.analytics.log_record import LogRecord, Rejection, loads_line, loads_text, validate_record
from distillguard.errors import InputError

__all__ = ["STAGED_SCHEMA_FIELDS", "IngestResult", "ingest", "iter_log", "iter_records"]

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
    ("topic", "int64"),  # topic cluster; filled in by analytics.embed, NULL otherwise
    ("lineno", "int64"),  # the row's line (JSONL) or row number in its source, NULL if unknown
)
_BATCH = 50_000
# DuckDB's working memory during ingest; beyond it, it spills to the work directory.
_MEMORY_LIMIT = "2GB"
# JSONL is read in blocks of this many bytes (cut at a line end), this many at once.
_CHUNK_BYTES = 32 << 20
_WORKERS = 2
# A line of only these is blank and skipped (what DuckDB's JSON reader skips); any other line,
# even one of other Unicode spaces, is a row: accepted or quarantined, never dropped.
_BLANK_CHARS = " \t\r"


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


_Block = tuple[list[str], list[int], list[tuple[int, Rejection, bytes]]]


def _split_block(data: bytes, first: int) -> _Block:
    """Return (non-blank decoded lines, their line numbers, undecodable lines) of a block of
    whole lines whose first line is line ``first``."""
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    bad: list[tuple[int, Rejection, bytes]] = []
    try:
        text = data.decode("utf-8").split("\n")[: len(raw)]
    except UnicodeDecodeError:
        text = []
        for i, b in enumerate(raw):
            try:
                text.append(b.decode("utf-8"))
            except UnicodeDecodeError as exc:
                text.append("")
                reason = f"the line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
                bad.append((first + i, Rejection("invalid_utf8", reason), b.rstrip(b"\r")))
    lines, numbers = [], []
    for i, line in enumerate(text):
        if line.endswith("\r"):
            line = line[:-1]
        if line.strip(_BLANK_CHARS):
            lines.append(line)
            numbers.append(first + i)
    return lines, numbers, bad


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
    try:
        con = psycopg.connect(url, row_factory=dict_row, connect_timeout=5)
    except psycopg.Error as exc:
        raise InputError(f"Cannot connect to the PostgreSQL log: {exc}") from None
    with con, con.cursor(name="dg_scan") as cur:
        cur.execute("SELECT * FROM request_log")
        yield from _iter_rows(iter(cur), "postgresql")


def _source(spec: str) -> Iterator[tuple[str, LogRecord | Rejection, bytes]] | Path:
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
    return path  # JSONL: the chunked SQL fast path


def _iter_jsonl(path: Path) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    # Line by line: the simple reader for callers that want records, not the staged fast path.
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for i, line in enumerate(fh, 1):
            line = line.rstrip(b"\r\n")
            if line.strip(_BLANK_CHARS.encode()):
                yield f"{path}:{i}", loads_line(line), line


def iter_log(spec: str) -> Iterator[tuple[str, LogRecord | Rejection, bytes]]:
    """Yield ``(where, record or rejection, raw line)`` for every row of one log source (a
    JSONL(.gz) or Parquet path, or a ``sqlite:///`` / ``postgresql://`` URL), validated exactly
    as :func:`ingest` validates it.

    Raises:
        InputError: the path does not exist, or the database cannot be read.
    """
    src = _source(spec)
    return _iter_jsonl(src) if isinstance(src, Path) else src


def iter_records(sources: list[str]) -> Iterator[LogRecord]:
    """Yield the valid records of several log sources; rejected rows are skipped (``scan`` is
    where they are quarantined and counted)."""
    for spec in sources:
        for _, rec, _ in iter_log(spec):
            if isinstance(rec, LogRecord):
                yield rec


class _Sink:
    """Where rows go: staged Parquet for good ones, the quarantine file for bad ones."""

    def __init__(self, result: IngestResult, writer: Any, qfh: Any, schema: Any) -> None:
        self.result, self.writer, self.qfh, self.schema = result, writer, qfh, schema
        self.buf: list[dict[str, Any]] = []

    def reject(self, where: str, rec: Rejection, line: bytes | str) -> None:
        self.result.skipped[rec.reason] += 1
        text = line[:2000].decode("utf-8", "replace") if isinstance(line, bytes) else line[:2000]
        row = {"where": where, "reason": rec.reason, "detail": rec.detail, "line": text}
        self.qfh.write(json.dumps(row) + "\n")

    def accept(self, rec: LogRecord, lineno: int | None = None) -> None:
        row = rec.flat()
        row["prompt"] = staged_prompt(row["prompt"])
        row["lineno"] = lineno
        self.buf.append(row)
        self.result.accepted += 1
        if len(self.buf) >= _BATCH:
            self.flush()

    def add(
        self, where: str, rec: LogRecord | Rejection, line: bytes | str, lineno: int | None = None
    ) -> None:
        if isinstance(rec, Rejection):
            self.reject(where, rec, line)
        else:
            self.accept(rec, lineno)

    def flush(self) -> None:
        import pyarrow as pa

        if self.buf:
            self.writer.write_table(pa.Table.from_pylist(self.buf, schema=self.schema))
            self.buf.clear()


def _exact_block(path: Path, data: bytes, first: int, sink: _Sink, con: Any) -> None:
    """The exact path for one block: Python splits the lines, DuckDB checks them (FAST_SQL)."""
    import numpy as np
    import pyarrow as pa

    from distillguard.analytics.jsonl_fast import FAST_SQL

    lines, numbers, bad = _split_block(data, first)
    for lineno, rej, raw in bad:
        sink.reject(f"{path}:{lineno}", rej, raw)
    if not lines:
        return
    con.register("chunk", pa.table({"lineno": pa.array(numbers, pa.int64()), "line": lines}))
    fast = con.sql(FAST_SQL).to_arrow_table()
    con.unregister("chunk")
    if fast.num_rows:
        sink.writer.write_table(fast.select(sink.schema.names).cast(sink.schema))
        sink.result.accepted += fast.num_rows
    nums = np.asarray(numbers, dtype=np.int64)
    slow = np.flatnonzero(~np.isin(nums, fast.column("lineno").to_numpy()))
    for i in slow.tolist():
        sink.add(f"{path}:{numbers[i]}", loads_text(lines[i]), lines[i], numbers[i])


def _ingest_jsonl(path: Path, sink: _Sink, con: Any, bar: Any, staged: Path, tag: str) -> None:
    """Stage one JSONL file block by block on DuckDB's reader (:mod:`.jsonl_native`), two
    blocks in flight; a block it cannot read, or whose lines drift, takes the exact path."""
    import tempfile
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    import duckdb

    from distillguard.analytics import jsonl_native as nat

    shm = Path("/dev/shm")
    tmpdir = Path(tempfile.mkdtemp(prefix="dg-ingest-", dir=shm if shm.is_dir() else staged.parent))

    def finish(i: int, first: int, n_lines: int, block: bytes, fut: Future[nat.BlockResult]) -> None:
        part = staged / f"part-{tag}-{i}.parquet"
        try:
            res = fut.result()
            rows, found = nat.lines_of(block, first, n_lines, set(res.rejected))
            nat.check(res, rows, found)
        except (duckdb.Error, nat.Drift):
            part.unlink(missing_ok=True)
            _exact_block(path, block, first, sink, con)
            bar.update(n_lines)
            return
        sink.result.accepted += res.accepted
        for k in sorted(found):
            lineno, raw = found[k]
            sink.add(f"{path}:{lineno}", loads_line(raw), raw, lineno)
        bar.update(n_lines)

    try:
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            pending: deque[tuple[int, int, int, bytes, Future[nat.BlockResult]]] = deque()
            for i, (first, n_lines, block) in enumerate(nat.blocks(path, _CHUNK_BYTES)):
                tmp = tmpdir / f"{i}.jsonl"
                part = staged / f"part-{tag}-{i}.parquet"
                fut = pool.submit(nat.stage_block, block, tmp, part, sink.schema)
                pending.append((i, first, n_lines, block, fut))
                while len(pending) > _WORKERS:
                    finish(*pending.popleft())
            while pending:
                finish(*pending.popleft())
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def ingest(
    sources: list[str], workdir: Path, *, quarantine: Path | None = None, progress: bool = False
) -> IngestResult:
    """Validate every row of ``sources``; stage good rows as Parquet, bad ones to quarantine.

    Returns an :class:`IngestResult` whose ``staged_path`` is a directory of Parquet files with
    the columns of :data:`STAGED_SCHEMA_FIELDS`. Raises :class:`InputError` for a missing source,
    or when no row at all is valid.
    """
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm import tqdm

    schema = pa.schema([(n, t) for n, t in STAGED_SCHEMA_FIELDS])
    workdir.mkdir(parents=True, exist_ok=True)
    qpath = quarantine or workdir / "quarantine.jsonl"
    staged = workdir / "staged"
    if staged.exists():
        shutil.rmtree(staged)
    staged.mkdir()
    result = IngestResult(staged_path=staged, quarantine_path=qpath)
    iters = [_source(s) for s in sources]  # fail fast on a missing path
    writer = pq.ParquetWriter(staged / "part-rows.parquet", schema)
    bar = tqdm(desc="ingest", unit=" rows", disable=not progress, mininterval=0.5)
    con = duckdb.connect()
    # Order is carried by lineno; spill to the work directory rather than grow without bound.
    con.execute("SET preserve_insertion_order = false")
    con.execute(f"SET temp_directory = '{str(workdir / 'duckdb-tmp').replace(chr(39), chr(39) * 2)}'")
    con.execute(f"SET memory_limit = '{_MEMORY_LIMIT}'")
    try:
        with open(qpath, "w", encoding="utf-8") as qfh:
            sink = _Sink(result, writer, qfh, schema)
            for i, it in enumerate(iters):
                if isinstance(it, Path):
                    _ingest_jsonl(it, sink, con, bar, staged, str(i))
                    continue
                for j, (where, rec, line) in enumerate(it, 1):
                    bar.update(1)
                    sink.add(where, rec, line, j)
            sink.flush()
    finally:
        con.close()
        writer.close()
        bar.close()
    if result.accepted == 0:
        raise InputError(
            f"No valid request in {', '.join(sources)}: {sum(result.skipped.values())} "
            f"rows were quarantined to {result.quarantine_path} "
            f"({dict(result.skipped)})."
        )
    return result
