"""`distillguard scan postgresql://...` reads the gateway's request_log table."""

import datetime as dt
import json
import uuid

import pytest

from distillguard.cli import main

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_schema():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    schema = f"dg_scan_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    try:
        # Every connection with this URL resolves request_log inside the private schema.
        yield f"{PG}?options=-csearch_path%3D{schema}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def _record(i: int, account: str, prompt: str, **extra):
    ts = dt.datetime(2026, 2, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=37 * i)
    # The shape the gateway's _log_record writes (RFC 3339 ts, params as an object).
    rec = {
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "account_id": account,
        "request_id": f"r{i}",
        "api_key_id": f"k-{account}",
        "ip": "198.51.100.7",
        "user_agent": "openai-python/1.12.0",
        "endpoint": "/v1/chat/completions",
        "model": "dg-small",
        "params": {"temperature": 0.7, "max_tokens": 256, "n": 1, "logprobs": None},
        "prompt": prompt,
        "messages": [{"role": "user", "content": prompt}],
        "prompt_tokens": 12,
        "completion_tokens": 40,
        "response": None,
        "status": 200,
        "latency_ms": 12.5,
        "watermarked": 0,
        "prompt_sha256": "0" * 64,
        "session_id": None,
        "org_id": None,
    }
    rec.update(extra)
    return rec


@pytest.mark.services
def test_scan_reads_gateway_postgres_store(pg_schema, tmp_path):
    from distillguard.gateway.store import open_store

    store = open_store(pg_schema)
    rows = [_record(i, f"user{i % 30}", f"question {i} about cooking pasta at home") for i in range(300)]
    rows += [
        _record(1000 + i, "harvester", f"Explain topic {i} step by step, show your reasoning.",
                params={"logprobs": True, "top_logprobs": 20, "max_tokens": 4096})
        for i in range(200)
    ]
    rows.append(_record(5000, "broken", "x", ts="not a time"))
    try:
        store.insert_log(rows)
        assert store.count_log() == 501
    finally:
        store.close()
    out, q = tmp_path / "r.json", tmp_path / "q.jsonl"
    rc = main(["scan", pg_schema, "--out", str(out), "--quarantine", str(q), "--quiet"])
    rep = json.loads(out.read_text())
    assert rc == 1 and rep["summary"]["events"] == 500
    assert rep["skipped"]["by_reason"] == {"bad_timestamp": 1}
    assert "postgresql#" in json.loads(q.read_text().splitlines()[0])["where"]
    by = {a["account_id"]: a for a in rep["accounts"]}
    assert by["harvester"]["flagged"] and any("logprobs" in r for r in by["harvester"]["reasons"])
    assert not any(by[f"user{i}"]["flagged"] for i in range(30))
