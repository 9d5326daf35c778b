"""A real OpenAI-compatible HTTP server on 127.0.0.1 for the audit CLI tests (no mock transport)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    """``/v1/chat/completions`` answers ``reply(last message)``; every request body is kept.

    ``rate_limit_first`` answers the first request 429 (Retry-After 0); ``fail_after`` answers
    500 once that many requests were received. Use as a context manager or call ``close()``.
    """

    def __init__(self, reply: Callable[[str], str], *, fail_after: int | None = None,
                 rate_limit_first: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                n = len(outer.requests)
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": "not found"})
                if rate_limit_first and n == 1:
                    return self._send(429, {"error": "slow down"}, {"Retry-After": "0"})
                if fail_after is not None and n > fail_after:
                    return self._send(500, {"error": "boom"})
                text = reply(body["messages"][-1]["content"])
                self._send(200, {"choices": [{"message": {"role": "assistant", "content": text}}]})

            def _send(self, code: int, doc: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(doc).encode()
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def prompts(self) -> list[str]:
        """The last message of every request received, in order."""
        return [r["messages"][-1]["content"] for r in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
