"""JSONL ingest on DuckDB's reader accounts for every line exactly as the line-by-line reader does."""

import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from distillguard.analytics import ingest as ing
from distillguard.analytics import jsonl_native as nat
from distillguard.analytics.ingest import ingest, iter_log
from distillguard.analytics.log_record import LogRecord

GOOD = {"ts": 1769940000.5, "account_id": "acct-1", "prompt": "Explain TCP slow start step by step."}


def _lines(n=400):
    out = []
    for i in range(n):
        rec = {**GOOD, "account_id": f"a{i % 7}", "prompt": f"question {i} " * (i % 5 + 1)}
        out.append(json.dumps(rec).encode())
        if i % 50 == 3:
            out.append(b"")  # blank
        if i % 60 == 5:
            out.append(b" \t \r")  # whitespace only: blank
        if i % 70 == 7:
            out.append(b"{not json")
        if i % 80 == 9:
            out.append(json.dumps({**GOOD, "ts": "soon"}).encode() + b"\r")  # CRLF, bad ts
        if i % 90 == 11:
            out.append(b'{"ts": 1769940000, "account_id": "\xff\xfe", "prompt": "x"}')  # invalid UTF-8
        if i % 100 == 13:
            # valid, but not on the SQL's fast path (content parts): Python accepts it
            msg = [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]
            out.append(json.dumps({"ts": 1769940000, "account_id": "p", "messages": msg}).encode())
    return out


def _reference(path):
    """Line-by-line: (accepted account ids, Counter of (reason, line)) by the Python reader."""
    acc, bad = Counter(), Counter()
    for where, rec, _ in iter_log(str(path)):
        if isinstance(rec, LogRecord):
            acc[rec.account_id] += 1
        else:
            bad[(rec.reason, int(where.rsplit(":", 1)[1]))] += 1
    return acc, bad


def _scan(path, tmp_path, quarantine):
    res = ingest([str(path)], tmp_path / "w", quarantine=quarantine)
    table = pq.read_table(res.staged_path)
    acc = Counter(table.column("account_id").to_pylist())
    rows = [json.loads(x) for x in quarantine.read_text().splitlines()]
    bad = Counter((r["reason"], int(r["where"].rsplit(":", 1)[1])) for r in rows)
    return res, acc, bad


@pytest.mark.parametrize("chunk", [1 << 20, 700])
@pytest.mark.parametrize("last_newline", [True, False])
def test_native_matches_line_by_line_and_takes_no_exact_path(tmp_path, monkeypatch, chunk, last_newline):
    monkeypatch.setattr(ing, "_CHUNK_BYTES", chunk)
    exact = []
    monkeypatch.setattr(ing, "_exact_block", lambda *a: exact.append(a))  # must not be needed
    data = b"\n".join(_lines()) + (b"\n" if last_newline else b"")
    log = tmp_path / "l.jsonl"
    log.write_bytes(data)
    res, acc, bad = _scan(log, tmp_path, tmp_path / "q.jsonl")
    want_acc, want_bad = _reference(log)
    assert not exact
    assert acc == want_acc and bad == want_bad
    assert res.accepted == sum(want_acc.values()) and sum(res.skipped.values()) == sum(want_bad.values())
    assert {r for r, _ in want_bad} >= {"invalid_json", "invalid_utf8", "bad_timestamp"}
    assert want_acc["p"] > 0  # the Python-only shape was accepted


def test_lines_drifting_from_duckdb_fall_back_to_the_exact_path(tmp_path, monkeypatch):
    # Form feed / vertical tab / NBSP lines: DuckDB's reader may fold them into one bad row.
    # Whatever it does, the result is the line-by-line one: each is a row, quarantined.
    lines = _lines(60)
    lines[10:10] = [b"\x0c", b"\x0b", b"\xc2\xa0"]
    log = tmp_path / "l.jsonl"
    log.write_bytes(b"\n".join(lines) + b"\n")
    _, acc, bad = _scan(log, tmp_path, tmp_path / "q.jsonl")
    want_acc, want_bad = _reference(log)
    assert acc == want_acc and bad == want_bad
    assert [bad[("invalid_json", n)] for n in (11, 12, 13)] == [1, 1, 1]


def test_check_raises_on_a_shifted_line():
    lines = [json.dumps({**GOOD, "account_id": f"a{i}"}).encode() for i in range(5)]
    block = b"\n".join(lines) + b"\n"
    rows, found = nat.lines_of(block, 1, 5, {2})
    assert rows == 5 and found[2] == (2, lines[1])
    nat.check(nat.BlockResult(4, 5, {2: "a1"}), rows, found)
    with pytest.raises(nat.Drift):
        nat.check(nat.BlockResult(4, 5, {2: "a2"}), rows, found)  # DuckDB read another line there
    with pytest.raises(nat.Drift):
        nat.check(nat.BlockResult(4, 6, {2: "a1"}), rows, found)  # one row more than lines


def test_gzip_is_read_the_same(tmp_path):
    import gzip

    data = b"\n".join(_lines(120)) + b"\n"
    plain, gz = tmp_path / "l.jsonl", tmp_path / "l.jsonl.gz"
    plain.write_bytes(data)
    gz.write_bytes(gzip.compress(data))
    _, acc1, bad1 = _scan(plain, tmp_path / "a", tmp_path / "q1.jsonl")
    _, acc2, bad2 = _scan(gz, tmp_path / "b", tmp_path / "q2.jsonl")
    assert acc1 == acc2 and bad1 == bad2


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_blocks_cover_the_file_exactly(tmp_path, chunk):
    data = b"\n".join(_lines(120)) + b"\nlast line without newline"
    p = tmp_path / "x.jsonl"
    p.write_bytes(data)
    got = list(nat.blocks(p, chunk))
    assert b"".join(b for _, _, b in got) == data + b"\n"
    assert [f for f, _, _ in got] == [1 + sum(n for _, n, _ in got[:i]) for i in range(len(got))]
    assert all(b.endswith(b"\n") and b.count(b"\n") == n for _, n, b in got)


def test_lines_of_counts_blank_lines_and_returns_raw_bytes():
    plain = b'{"a": 1}\n{"a": 2}\r\n{"a": 3}\n'
    assert nat.lines_of(plain, 1, 3, {2}) == (3, {2: (2, b'{"a": 2}')})
    for blank in (b"\n", b" \n", b"\t\r\n", b"\r\n"):
        block = b'{"a": 1}\n' + blank + b'{"a": 2}\n'
        n, found = nat.lines_of(block, 1, 3, {2})
        assert (n, found) == (2, {2: (3, b'{"a": 2}')})
