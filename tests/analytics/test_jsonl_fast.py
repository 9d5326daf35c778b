"""The SQL fast path of JSONL ingest never accepts what validate_record rejects, and agrees on values."""

import json
import math

import duckdb
import pyarrow as pa
import pytest

from distillguard.analytics.ingest import ingest
from distillguard.analytics.jsonl_fast import FAST_SQL, staged_prompt
from distillguard.analytics.log_record import LogRecord, loads_text

BASE = {"ts": 1769940000.25, "account_id": "acct-1", "prompt": "Explain TCP slow start step by step."}
VARIANTS = [
    {},
    {"ts": "2026-02-01T10:00:00Z"},
    {"ts": "2026-02-01T10:00:00.5+02:00"},
    {"ts": "2026-02-01 10:00:00"},  # Python reads it (naive = UTC); SQL leaves it to Python
    {"ts": "2026-02-30T10:00:00Z"},
    {"ts": 1769940000},
    {"ts": 1769940000000},
    {"ts": True},
    {"ts": None},
    {"ts": "soon"},
    {"account_id": ""},
    {"account_id": 42},
    {"account_id": None},
    {"prompt": ""},
    {"prompt": 7},
    {"prompt": None},
    {"prompt": "x" * 700},
    {"prompt": "日本語のプロンプト \u00e9 \\ \" \n tab\t"},
    {"prompt": None, "messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a"},
                                  {"role": "user", "content": "q2"}]},
    {"prompt": None, "messages": [{"role": "user", "content": ""}, {"role": "user", "content": "last"}]},
    {"prompt": None, "messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]},
    {"prompt": None, "messages": [{"role": "assistant", "content": "only"}]},
    {"prompt": None, "messages": [1, 2]},
    {"prompt": None, "messages": [{"content": "no role"}]},
    {"prompt": None, "messages": []},
    {"prompt": None, "messages": "text"},
    {"params": {"temperature": 0.7, "max_tokens": 4096, "logprobs": True, "top_logprobs": 20, "n": 2}},
    {"params": {"temperature": 1, "seed": 3}},
    {"params": {"max_tokens": 5.0}},
    {"params": {"max_tokens": "many"}},
    {"params": {"temperature": "hot"}},
    {"params": {"temperature": True}},
    {"params": {"logprobs": 1}},
    {"params": {"max_tokens": 99999999999999999999}},
    {"params": []},
    {"params": None},
    {"ip": "203.0.113.9", "user_agent": "ua/1", "endpoint": "/v1/x", "model": "m", "session_id": "s"},
    {"ip": 5},
    {"status": 200, "prompt_tokens": 10, "completion_tokens": 20, "latency_ms": 12.5},
    {"status": 2.5},
    {"status": True},
    {"latency_ms": "fast"},
    {"response": None, "request_id": "r", "org_id": "o", "api_key_id": "k"},
]


def _fast(lines):
    con = duckdb.connect()
    con.register("chunk", pa.table({"lineno": list(range(len(lines))), "line": lines}))
    cur = con.execute(FAST_SQL)
    cols = [d[0] for d in cur.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


def test_fast_path_agrees_with_validate_record():
    lines = [json.dumps({**BASE, **v}) for v in VARIANTS]
    lines += ["nope", "[1, 2]", '"str"', "{", '{"ts": NaN, "account_id": "a", "prompt": "p"}', " {}"]
    fast = _fast(lines)
    assert len(fast) >= 15  # the common shapes take the fast path
    for i, line in enumerate(lines):
        py = loads_text(line)
        if i not in fast:
            continue
        assert isinstance(py, LogRecord), (line, py)
        want = py.flat()
        want["prompt"] = staged_prompt(want["prompt"])
        got = fast[i]
        for k, v in want.items():
            if isinstance(v, float):
                assert math.isclose(got[k], v, rel_tol=0, abs_tol=1e-9), (line, k)
            else:
                assert got[k] == v, (line, k, got[k], v)


def test_ingest_counts_every_line(tmp_path):
    good = [json.dumps({**BASE, **v}) for v in VARIANTS]
    # Blank lines, CRLF, invalid JSON, invalid UTF-8, and no newline at the end.
    raw = ("\n".join(good) + "\n\n   \nnope\r\n").encode() + b"\xff\xfe\n" + good[0].encode()
    log = tmp_path / "l.jsonl"
    log.write_bytes(raw)
    q = tmp_path / "q.jsonl"
    res = ingest([str(log)], tmp_path / "w", quarantine=q)
    py = [loads_text(x) for x in good]
    n_ok = sum(isinstance(r, LogRecord) for r in py)
    assert res.accepted == n_ok + 1
    assert sum(res.skipped.values()) == len(good) - n_ok + 2  # + "nope" + invalid UTF-8
    assert res.skipped["invalid_utf8"] == 1 and res.skipped["invalid_json"] == 1
    rows = [json.loads(x) for x in q.read_text().splitlines()]
    assert len(rows) == sum(res.skipped.values())
    assert {r["where"] for r in rows if r["reason"] == "invalid_utf8"} == {f"{log}:{len(good) + 4}"}
    assert {r["where"] for r in rows if r["reason"] == "invalid_json"} == {f"{log}:{len(good) + 3}"}


@pytest.mark.parametrize("gz", [False, True])
def test_blocks_split_lines_across_reads(tmp_path, monkeypatch, gz):
    import gzip

    from distillguard.analytics import ingest as ing

    monkeypatch.setattr(ing, "_CHUNK_BYTES", 100)  # many blocks, lines cut across reads
    lines = [json.dumps({**BASE, "prompt": f"question {i} " * (i % 7)}) for i in range(300)]
    data = ("\n".join(lines) + "\n").encode()
    log = tmp_path / ("l.jsonl.gz" if gz else "l.jsonl")
    log.write_bytes(gzip.compress(data) if gz else data)
    res = ingest([str(log)], tmp_path / "w")
    assert res.accepted == 300 and not res.skipped
