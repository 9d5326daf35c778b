"""JSONL ingest on DuckDB's own JSON reader, block by block, with every line accounted for.

The file is read in byte blocks cut at line ends (:func:`blocks`). Each block is handed to
DuckDB's reader as a file in memory-backed storage and checked by
:func:`.jsonl_fast.native_sql` (:func:`stage_block`); two blocks are in flight at once, each on
its own single-threaded connection. (One DuckDB query over the whole file would need
``WITH ORDINALITY`` to say which line a row came from, and that runs the whole query on one
thread.) Accepted rows go straight to a staged Parquet part and never become Python objects.
What the SQL does not accept (a few lines in a real log) comes back as ranks among the block's
non-blank lines; :func:`lines_of` turns them into line numbers and raw bytes, which then go
through :func:`~distillguard.analytics.log_record.loads_line` like any other line.

A line counts as blank, as DuckDB's reader skips it, when it holds only spaces, tabs and
carriage returns. That DuckDB and this module agree is checked, not assumed: the block must
have exactly as many non-blank lines as DuckDB returned rows, and each line handed back must
carry the ``account_id`` DuckDB read there; otherwise :class:`Drift` is raised and the caller
reads the block the exact way (:mod:`.ingest`). Edge module: duckdb and pyarrow lazily.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distillguard.analytics.jsonl_fast import native_sql

__all__ = ["BlockResult", "Drift", "blocks", "check", "lines_of", "stage_block"]

CHUNK_BYTES = 64 << 20
# A blank line: the newline before it, then only spaces / tabs / CRs up to the next newline.
_BLANK = re.compile(rb"\n[ \t\r]*(?=\n)")
_BLANK_FIRST = re.compile(rb"[ \t\r]*\n")
_local = threading.local()


class Drift(Exception):
    """DuckDB's rows and the block's lines disagree; read the block the exact way."""


@dataclass(frozen=True)
class BlockResult:
    """What DuckDB staged from one block, and the lines it left to Python."""

    accepted: int
    rows: int  # non-blank lines DuckDB saw
    rejected: dict[int, str | None]  # rank among non-blank lines -> account_id read there


def blocks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[tuple[int, int, bytes]]:
    """Yield ``(line number of the block's first line, lines in it, block)``; each block ends
    with a newline (one is added after a last line that has none)."""
    opener = gzip.open if path.suffix == ".gz" else open
    rest, lineno = b"", 1
    with opener(path, "rb") as fh:
        while True:
            chunk = fh.read(chunk_bytes)
            if not chunk:
                if rest:
                    yield lineno, 1, rest + b"\n"
                return
            cut = chunk.rfind(b"\n")
            if cut < 0:
                rest += chunk
                continue
            block = chunk if cut + 1 == len(chunk) else chunk[: cut + 1]
            if rest:
                block = rest + block
            rest = chunk[cut + 1 :]
            n = block.count(b"\n")
            yield lineno, n, block
            lineno += n


def _con(memory_limit: str) -> Any:
    con = getattr(_local, "con", None)
    if con is None:
        import duckdb

        con = duckdb.connect()
        con.execute("SET threads = 1")  # parallel across blocks instead
        con.execute(f"SET memory_limit = '{memory_limit}'")
        _local.con = con
    return con


def stage_block(
    block: bytes, tmp: Path, part: Path, schema: Any, memory_limit: str = "1GB"
) -> BlockResult:
    """Parse ``block`` with DuckDB (through the file ``tmp``); write accepted rows to ``part``
    with the pyarrow ``schema`` (the staged columns).

    Raises duckdb errors for a block the reader cannot handle at all.
    """
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    tmp.write_bytes(block)
    try:
        table = _con(memory_limit).sql(native_sql(str(tmp))).to_arrow_table()
    finally:
        tmp.unlink()
    ok = table.column("ok")
    good = table.filter(ok).select(schema.names).cast(schema)
    bad = table.filter(pc.invert(ok)).select(["lineno", "account_id"]).to_pylist()
    if good.num_rows:
        # Uncompressed: the parts live for one scan, and writing them is on the hot path.
        pq.write_table(good, part, compression="none")
    return BlockResult(good.num_rows, table.num_rows, {int(r["lineno"]): r["account_id"] for r in bad})


def lines_of(
    block: bytes, first: int, n_lines: int, ranks: set[int]
) -> tuple[int, dict[int, tuple[int, bytes]]]:
    """Return (non-blank lines in ``block``, {rank: (line number, raw line)}) for ``ranks``.

    ``first`` is the line number of the block's first line and ``n_lines`` its count of lines;
    a raw line has one trailing CR removed. The block is split into lines only when a rank is
    wanted.
    """
    blanks = [0] if _BLANK_FIRST.match(block) else []
    pos, cnt = 0, 0
    for m in _BLANK.finditer(block):
        cnt += block.count(b"\n", pos, m.start() + 1)
        pos = m.start() + 1
        blanks.append(cnt)
    found: dict[int, tuple[int, bytes]] = {}
    if ranks:
        lines, blank, r = block.split(b"\n"), set(blanks), 0
        for i in range(n_lines):
            if i in blank:
                continue
            r += 1
            if r in ranks:
                raw = lines[i]
                found[r] = (first + i, raw[:-1] if raw.endswith(b"\r") else raw)
    return n_lines - len(blanks), found


def check(res: BlockResult, rows: int, found: dict[int, tuple[int, bytes]]) -> None:
    """Raise :class:`Drift` unless the block's lines match what DuckDB read.

    Raises:
        Drift: a different count of non-blank lines, a rank not found, or a line whose string
            ``account_id`` differs from the one DuckDB read at that rank.
    """
    if rows != res.rows or len(found) != len(res.rejected):
        raise Drift(f"{rows} non-blank lines, {res.rows} rows read")
    for k, acct in res.rejected.items():
        if acct is None:
            continue
        try:
            got = json.loads(found[k][1]).get("account_id")
        except (ValueError, AttributeError):
            got = None
        # DuckDB spells a non-string id as JSON text; only a string id can be compared.
        if isinstance(got, str) and got != acct:
            raise Drift(f"line rank {k}: account_id {got!r}, DuckDB read {acct!r}")
