"""The gateway on a real loopback socket: the official openai client, a load run from a second
process, and an upstream that times out or fails."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.gateway.conftest import ADMIN, make_settings

MODEL = "smollm2-135m-instruct"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """uvicorn serving an app in a background thread; ``stop()`` triggers the graceful lifespan."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="error", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started and time.time() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _account(app: Any) -> tuple[str, str]:
    acc = app.state.store.create_account("acme")
    return acc.account_id, app.state.store.create_key(acc.account_id)[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Any]]:
    from distillguard.gateway.app import create_app

    app = create_app(make_settings(tmp_path, requests_per_minute=100_000, tokens_per_minute=10**7))
    srv = Server(app)
    yield srv, app
    srv.stop()


def test_official_openai_client(served) -> None:
    import openai

    srv, app = served
    acct, key = _account(app)
    client = openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL]
    hi = [{"role": "user", "content": "hi"}]
    r = client.chat.completions.create(model=MODEL, messages=hi, max_tokens=4)
    assert len(r.choices[0].message.content.split()) == 4 and r.usage.completion_tokens == 4
    pieces = [c.choices[0].delta.content for c in client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=6, stream=True)
        if c.choices and c.choices[0].delta.content]
    assert len("".join(pieces).split()) == 6
    t = client.completions.create(model=MODEL, prompt="abc", max_tokens=3)
    assert len(t.choices[0].text.split()) == 3
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=srv.url + "/v1", api_key="dg-wrong", max_retries=0).models.list()
    srv.stop()  # graceful shutdown flushes the log
    assert app.state.store.count_log(acct) == 4  # 3 served + the 404 is rejected before logging


_LOAD = r"""
import asyncio, json, sys, httpx
url, key, n, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
async def main():
    sem = asyncio.Semaphore(conc); codes = {}
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer " + key}, timeout=30) as c:
        async def one(i):
            async with sem:
                body = {"model": "smollm2-135m-instruct", "max_tokens": 4,
                        "messages": [{"role": "user", "content": "q" + chr(97 + i % 26) * (1 + i // 26)}]}
                r = await c.post("/v1/chat/completions", json=body)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
        await asyncio.gather(*(one(i) for i in range(n)))
    print(json.dumps(codes))
asyncio.run(main())
"""


def test_load_from_second_process_loses_no_record(served) -> None:
    srv, app = served
    app.state.store.create_account("research-bot", tier="research", account_id="acct_load")
    key = app.state.store.create_key("acct_load")[1]
    n = 400
    out = subprocess.run([sys.executable, "-c", _LOAD, srv.url, key, str(n), "32"],
                         capture_output=True, text=True, timeout=120, check=True)
    codes = json.loads(out.stdout)
    assert sum(codes.values()) == n
    srv.stop()
    assert app.state.store.count_log("acct_load") == n


def _fake_upstream() -> Any:
    """A real OpenAI-compatible upstream on loopback: slow, failing, streaming and plain answers."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        said = body["messages"][-1]["content"]
        if said == "slow":
            await asyncio.sleep(3)
        if said == "boom":
            return JSONResponse({"error": "x"}, status_code=500)
        if body.get("stream"):
            chunks = [{"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
                      for w in ("hi", " from", " sse")]
            chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 1, "completion_tokens": 3}})
            sse = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return Response(sse, media_type="text/event-stream")
        return JSONResponse({"choices": [{"message": {"content": "hi from upstream"},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 1, "completion_tokens": 3}})

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def test_upstream_timeout_and_5xx_are_504_and_502_and_logged(tmp_path: Path) -> None:
    from distillguard.gateway.app import create_app
    from distillguard.gateway.backends import OpenAIUpstreamBackend

    upstream = Server(_fake_upstream())
    try:
        be = OpenAIUpstreamBackend(upstream.url, timeout_s=0.5)
        app = create_app(make_settings(tmp_path), backend=be)
        _, key = _account(app)
        from fastapi.testclient import TestClient

        with TestClient(app) as c:
            h = {"Authorization": f"Bearer {key}"}

            def ask(text: str) -> Any:
                return c.post("/v1/chat/completions", headers=h, json={
                    "model": MODEL, "messages": [{"role": "user", "content": text}]})
            ok = ask("hello")
            assert ok.status_code == 200 and ok.json()["distillguard"]["watermarked"] is False
            assert ok.json()["choices"][0]["message"]["content"] == "hi from upstream"
            assert ask("slow").status_code == 504
            bad = ask("boom")
            assert bad.status_code == 502 and bad.json()["error"]["type"] == "upstream_error"
            streamed = c.post("/v1/chat/completions", headers=h, json={
                "model": MODEL, "stream": True, "messages": [{"role": "user", "content": "s"}]})
            chunks = [json.loads(ln[6:])["choices"][0]
                      for ln in streamed.text.split("\n\n") if ln.startswith("data: {")]
            assert "".join(ch["delta"].get("content") or "" for ch in chunks) == "hi from sse"
            assert chunks[-1]["finish_reason"] == "stop"  # the upstream's, relayed
            assert streamed.text.rstrip().endswith("data: [DONE]")
    finally:
        upstream.stop()
    rows = app.state.store.recent_log()
    assert sorted(r["status"] for r in rows) == [200, 200, 502, 504]
    assert {r["completion_tokens"] for r in rows if r["status"] == 200} == {3}


def test_store_failure_spools_then_replays(tmp_path: Path) -> None:
    from distillguard.gateway.logwriter import LogWriter
    from distillguard.gateway.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'x.db'}")
    real = st.insert_log
    down = {"v": True}

    def flaky(rows: list[dict[str, Any]]) -> None:
        if down["v"]:
            raise OSError("store down")
        real(rows)
    st.insert_log = flaky  # type: ignore[method-assign]
    w = LogWriter(st, tmp_path / "spool.jsonl")
    rec = {"ts": "2026-01-01T00:00:00Z", "account_id": "a", "prompt": "p", "status": 200}
    for _ in range(5):
        w.put(rec)
    w.flush()
    assert w.spooled == 5 and st.count_log() == 0 and (tmp_path / "spool.jsonl").exists()
    down["v"] = False
    w.put(rec)
    w.close()
    assert st.count_log() == 6 and not (tmp_path / "spool.jsonl").exists()


def test_admin_token_policy() -> None:
    from distillguard.errors import ConfigError
    from distillguard.gateway.settings import Settings

    for bad in ("", "admin", "short"):
        with pytest.raises(ConfigError, match="admin_token"):
            Settings(admin_token=bad)
    assert Settings(admin_token="", dev=True).dev
    assert Settings(admin_token=ADMIN).backend == "fake"


@pytest.mark.parametrize("watermarks", [False, True], ids=["plain-backend", "watermarking-backend"])
def test_client_disconnect_mid_stream_keeps_partial_response(tmp_path: Path, watermarks: bool) -> None:
    import httpx

    from distillguard.gateway.app import create_app
    from distillguard.gateway.backends import FakeBackend

    backend = FakeBackend(delay_s=0.05)
    # A cut-short stream never reaches the backend's final totals, so the row's watermark flag
    # must come from what the backend declares (the local model marks every token it sends).
    backend.watermarks = watermarks
    app = create_app(make_settings(tmp_path), backend=backend)
    acct, key = _account(app)
    srv = Server(app)
    try:
        body = {"model": MODEL, "stream": True, "max_tokens": 200,
                "messages": [{"role": "user", "content": "long one"}]}
        with httpx.Client(base_url=srv.url) as c, c.stream(
                "POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
            got = 0
            for line in r.iter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    got += 1
                if got == 3:
                    break  # leave with 197 tokens still to come
        deadline = time.time() + 10
        while app.state.store.count_log(acct) == 0 and time.time() < deadline:
            app.state.writer.flush()
            time.sleep(0.1)
    finally:
        srv.stop()
    rows = app.state.store.recent_log(acct)
    assert len(rows) == 1 and rows[0]["status"] == 499
    assert 3 <= rows[0]["completion_tokens"] < 200
    assert rows[0]["watermarked"] == int(watermarks)
