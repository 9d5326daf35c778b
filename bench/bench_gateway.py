"""Added latency of the gateway over a fast fake upstream, open-loop at fixed request rates.

Three processes on loopback: a minimal OpenAI-compatible fake upstream (uvicorn), the gateway
(``--backend openai`` pointed at it; SQLite request log and in-process rate limits on), and this
client, which sends requests at a fixed rate (open loop: send times are scheduled, so a slow
server is charged for queueing) first straight to the upstream, then through the gateway.
Added latency = gateway percentile - direct percentile at the same rate.

    .venv/bin/python bench/bench_gateway.py --rates 100 500 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

_UPSTREAM = r"""
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
BODY = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok ok ok ok"},
                     "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}
async def chat(request):
    await request.body()
    return JSONResponse(BODY)
app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False)
"""

_GATEWAY = r"""
import sys, uvicorn
from distillguard.gateway.app import create_app
from distillguard.gateway.settings import Settings
s = Settings(admin_token="bench-admin-token-0123456789", store_url="sqlite:///" + sys.argv[3] + "/gw.db",
             spool_path=sys.argv[3] + "/spool.jsonl", backend="openai", upstream_url=sys.argv[2],
             key_file=sys.argv[3] + "/wm.key", canary_registry=sys.argv[3] + "/canaries.json",
             models=("m",), requests_per_minute=10**6, tokens_per_minute=10**8)
app = create_app(s)
st = app.state.store
if not st.list_accounts():
    st.create_account("bench", tier="research", account_id="acct_bench")
    open(sys.argv[3] + "/key", "w").write(st.create_key("acct_bench")[1])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="error", access_log=False)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not start")


async def _run(url: str, key: str, rate: float, seconds: float) -> tuple[np.ndarray, int]:
    import httpx

    n = int(rate * seconds)
    lat = np.full(n, np.nan)
    errors = 0
    body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"},
                                 timeout=30, limits=limits) as c:
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            nonlocal errors
            t0 = start + i / rate
            await asyncio.sleep(max(0.0, t0 - time.perf_counter()))
            try:
                r = await c.post("/v1/chat/completions", json=body)
            except httpx.HTTPError:
                errors += 1  # counted, latency left NaN (excluded from percentiles)
                return
            if r.status_code != 200:
                errors += 1
            lat[i] = (time.perf_counter() - t0) * 1000.0  # from the scheduled send time

        await asyncio.gather(*(one(i) for i in range(n)))
    return lat, errors


def main() -> None:
    """Run the benchmark and write the ``gateway`` section of docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rates", type=float, nargs="+", default=[100.0, 500.0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="dg-bench-gw-")
    up_port, gw_port = _port(), _port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _UPSTREAM, str(up_port)], env=env)]
    try:
        _wait(up_port)
        procs.append(subprocess.Popen([sys.executable, "-c", _GATEWAY, str(gw_port),
                                       f"http://127.0.0.1:{up_port}", tmp], env=env))
        _wait(gw_port)
        key = Path(tmp, "key").read_text()
        rows = []
        added_p99: dict[float, float] = {}
        for rate in args.rates:
            d, de = asyncio.run(_run(f"http://127.0.0.1:{up_port}", key, rate, args.seconds))
            g, ge = asyncio.run(_run(f"http://127.0.0.1:{gw_port}", key, rate, args.seconds))
            dp = np.nanpercentile(d, [50, 99])
            gp = np.nanpercentile(g, [50, 99])
            rows.append(f"| {rate:.0f} | {len(g)} | {dp[0]:.2f} / {dp[1]:.2f} | {gp[0]:.2f} / {gp[1]:.2f} "
                        f"| {gp[0] - dp[0]:.2f} / {gp[1] - dp[1]:.2f} | {de + ge} |")
            added_p99[rate] = float(gp[1] - dp[1])
            print(rows[-1], flush=True)
        time.sleep(1.0)  # let the log writer drain before counting
        import sqlite3

        logged = sqlite3.connect(Path(tmp, "gw.db")).execute("SELECT COUNT(*) FROM request_log").fetchone()[0]
        sent = sum(int(r * args.seconds) for r in args.rates)
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
    md = ("Latency in ms from the scheduled send time, p50 / p99; client, upstream and gateway share "
          "this machine's CPUs (2 cores), so the numbers include CPU contention between them.\n\n"
          "| rate (req/s) | requests | direct to upstream | through gateway | added by gateway | "
          "errors (direct + gateway) |\n|---|---|---|---|---|---|\n" + "\n".join(rows) +
          "\n\nTarget p99 added latency <= 5 ms: " + ", ".join(
              f"{r:.0f} req/s {'met' if v <= 5.0 else 'NOT met'} ({v:.1f} ms)" for r, v in added_p99.items())
          + ". Where the gateway's p50 is seconds, the single gateway process (one uvicorn worker, "
          "sharing the cores with the client and the upstream) cannot keep up with the offered "
          "rate and the figure is queueing, not per-request overhead."
          f"\n\nRequest-log rows in the gateway's SQLite store after the run: {logged} of {sent} "
          "gateway requests.\n\nLiteLLM's proxy was **not compared**: `litellm` is not installed in "
          "this environment and was not added within the time available, so the target "
          "\"<= 1/5 of LiteLLM's overhead\" is untested.\n")
    print(md)
    if not args.no_write:
        from _report import write_section

        write_section("gateway", "Gateway added latency (fake upstream)", md)


if __name__ == "__main__":
    main()
