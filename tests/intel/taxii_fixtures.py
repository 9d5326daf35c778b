"""Helpers: run our TAXII server or medallion on a free loopback port for the duration of a test."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

COLLECTION = "9c1f3a52-6d0e-4b8a-a2c7-5e4f1d3b7a90"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, auth: tuple[str, str], proc: Any = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if (
                httpx.get(
                    url, auth=auth, headers={"Accept": "application/taxii+json;version=2.1"}, timeout=2
                ).status_code
                < 500
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def serve_ours(store: Any) -> Iterator[str]:
    import uvicorn

    from distillguard.intel.taxii_server import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store), host="127.0.0.1", port=port, log_level="warning")
    )
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    while not server.started:
        if not t.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        t.join(10)


@contextlib.contextmanager
def serve_medallion(tmp: Path, users: dict[str, str]) -> Iterator[str]:
    port = free_port()
    data = {
        "/discovery": {
            "title": "test medallion",
            "description": "",
            "default": f"http://127.0.0.1:{port}/api1/",
            "api_roots": [f"http://127.0.0.1:{port}/api1/"],
        },
        "api1": {
            "information": {
                "title": "api1",
                "description": "",
                "versions": ["application/taxii+json;version=2.1"],
                "max_content_length": 50_000_000,
            },
            "status": [],
            "collections": [
                {
                    "id": COLLECTION,
                    "title": "coalition",
                    "description": "",
                    "can_read": True,
                    "can_write": True,
                    "media_types": ["application/stix+json;version=2.1"],
                    "objects": [],
                    "manifest": [],
                }
            ],
        },
    }
    (tmp / "data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(tmp / "data.json"),
        },
        "users": users,
        "taxii": {"max_page_size": 100},
    }
    (tmp / "config.json").write_text(json.dumps(config))
    script = Path(sys.executable).parent / "medallion"
    proc = subprocess.Popen(
        [str(script), "--host", "127.0.0.1", "--port", str(port), str(tmp / "config.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        user, pw = next(iter(users.items()))
        wait_up(f"http://127.0.0.1:{port}/taxii2/", (user, pw), proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
