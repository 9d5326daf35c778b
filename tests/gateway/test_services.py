"""Two gateway replicas sharing PostgreSQL (accounts, request log) and Redis (limits)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.gateway.conftest import ADMIN

pytestmark = pytest.mark.services
MODEL = "smollm2-135m-instruct"
PG = "postgresql://postgres@127.0.0.1:5432/"


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = "dg_gw_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(PG + "test", autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}")
    admin.execute(f"CREATE DATABASE {name}")
    yield PG + name
    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    admin.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    redis = pytest.importorskip("redis")
    r = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
    try:
        r.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    prefix = "dgtest" + secrets.token_hex(4)
    yield prefix
    for k in r.scan_iter(f"{prefix}*"):
        r.delete(k)
    r.close()


def _replica(tmp_path: Path, i: int, pg: str, prefix: str, redis_url: str) -> Any:
    from fastapi.testclient import TestClient

    from distillguard.gateway.app import create_app
    from distillguard.gateway.settings import Settings

    s = Settings(admin_token=ADMIN, store_url=pg, redis_url=redis_url or None, limit_prefix=prefix,
                 requests_per_minute=30, spool_path=str(tmp_path / f"spool{i}.jsonl"),
                 key_file=str(tmp_path / "wm.key"), canary_registry=str(tmp_path / "canaries.json"))
    return TestClient(create_app(s))


def test_two_replicas_share_limits_and_log(tmp_path: Path, pg_url: str, redis_prefix: str) -> None:
    a = _replica(tmp_path, 0, pg_url, redis_prefix, "redis://127.0.0.1:6379")
    b = _replica(tmp_path, 1, pg_url, redis_prefix, "redis://127.0.0.1:6379")
    with a, b:
        r = a.post("/admin/accounts", json={"name": "shared"}, headers={"Authorization": f"Bearer {ADMIN}"})
        acct, key = r.json()["account"]["account_id"], r.json()["api_key"]
        h = {"Authorization": f"Bearer {key}"}
        codes = []
        for i in range(40):
            word = chr(97 + i % 26) + chr(97 + i // 26)
            msgs = [{"role": "user", "content": "about " + word}]
            body = {"model": MODEL, "max_tokens": 2, "messages": msgs}
            codes.append((a if i % 2 else b).post("/v1/chat/completions", json=body, headers=h).status_code)
        # 30 per minute across both replicas: a per-replica limiter would have allowed all 40.
        assert codes.count(200) == 30 and codes.count(429) == 10
    assert a.app.state.store.count_log(acct) == 40


def test_redis_unavailable_fails_open(tmp_path: Path, pg_url: str) -> None:
    c = _replica(tmp_path, 0, pg_url, "dgdown", "redis://127.0.0.1:1")
    with c:
        r = c.post("/admin/accounts", json={"name": "x"}, headers={"Authorization": f"Bearer {ADMIN}"})
        h = {"Authorization": f"Bearer {r.json()['api_key']}"}
        body = {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
        assert c.post("/v1/chat/completions", json=body, headers=h).status_code == 200
        assert c.get("/healthz").json()["ratelimit_errors"] >= 1


def test_postgres_connections_killed_mid_load_lose_no_record(tmp_path: Path, pg_url: str) -> None:
    """Stands in for a PostgreSQL restart without disturbing the shared server: every backend
    of this test's own database is terminated half way through the load."""
    import psycopg

    c = _replica(tmp_path, 0, pg_url, "dgpg" + secrets.token_hex(3), "")
    name = pg_url.rsplit("/", 1)[1]
    with c:
        r = c.post("/admin/accounts", json={"name": "x", "tier": "research"},
                   headers={"Authorization": f"Bearer {ADMIN}"})
        acct, h = r.json()["account"]["account_id"], {"Authorization": f"Bearer {r.json()['api_key']}"}
        codes = []
        for i in range(20):
            if i == 10:
                c.app.state.writer.flush()
                with psycopg.connect(PG + "test", autocommit=True) as k:
                    k.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            body = {"model": MODEL, "max_tokens": 2, "messages": [{"role": "user", "content": f"q{i}"}]}
            codes.append(c.post("/v1/chat/completions", json=body, headers=h).status_code)
        assert codes == [200] * 20
    assert c.app.state.store.count_log(acct) == 20
