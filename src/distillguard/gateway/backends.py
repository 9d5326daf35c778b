"""Backends that produce completions: a fast deterministic fake, an OpenAI-compatible upstream,
and the local SmolLM2 model (batched, watermarked per account).

Every backend implements ``async complete(req) -> Completion`` and ``stream(req)`` (an async
iterator of text pieces). Upstream failures raise :class:`UpstreamError` carrying the HTTP
status the gateway should answer with (502 for errors, 504 for timeouts).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Backend", "Completion", "CompletionRequest", "FakeBackend", "LocalModelBackend",
           "OpenAIUpstreamBackend", "UpstreamError"]


class UpstreamError(Exception):
    """The backend failed; ``status`` is what the gateway returns (502 or 504)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CompletionRequest:
    """A validated request as backends see it (``prompt`` is the rendered text)."""

    model: str
    prompt: str
    messages: list[dict[str, Any]] | None
    max_tokens: int
    temperature: float
    account_id: str
    watermark_delta: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Completion:
    """A finished completion."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    watermarked: bool


class Backend(Protocol):
    """What the gateway calls."""

    async def complete(self, req: CompletionRequest) -> Completion:
        """Return the whole completion."""
        ...

    def stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Yield the completion text piece by piece."""
        ...


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


class FakeBackend:
    """Deterministic, instant text derived from the prompt hash (for tests and benchmarks)."""

    _WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda")

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def _words(self, req: CompletionRequest) -> list[str]:
        h = hashlib.sha256(req.prompt.encode("utf-8")).digest()
        return [self._WORDS[h[i % 32] % len(self._WORDS)] for i in range(req.max_tokens)]

    async def complete(self, req: CompletionRequest) -> Completion:
        """Return ``max_tokens`` pseudo-words."""
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        words = self._words(req)
        return Completion(" ".join(words), _count_tokens(req.prompt), len(words), "length", False)

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Yield one pseudo-word at a time."""
        for i, w in enumerate(self._words(req)):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield (" " if i else "") + w


class OpenAIUpstreamBackend:
    """Forwards to any OpenAI-compatible ``/v1/chat/completions``; output is not watermarked."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # Keep enough idle connections for bursts: httpx's default of 20 keep-alive connections
        # makes a busy gateway open and close a TCP connection per upstream request.
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=256)
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                         timeout=timeout_s, limits=limits)

    def _body(self, req: CompletionRequest, stream: bool) -> dict[str, Any]:
        messages = req.messages or [{"role": "user", "content": req.prompt}]
        return {"model": req.model, "messages": messages, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "stream": stream}

    async def complete(self, req: CompletionRequest) -> Completion:
        """POST to the upstream and parse its answer."""
        import httpx

        try:
            r = await self._client.post("/v1/chat/completions", json=self._body(req, False))
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, "the upstream model server timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"the upstream model server failed: {type(exc).__name__}") from exc
        if r.status_code >= 400:
            raise UpstreamError(502, f"the upstream model server answered HTTP {r.status_code}")
        try:
            data = r.json()
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            finish = data["choices"][0].get("finish_reason") or "stop"
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(502, "the upstream answer is not an OpenAI chat completion") from exc
        return Completion(text, int(usage.get("prompt_tokens") or _count_tokens(req.prompt)),
                          int(usage.get("completion_tokens") or _count_tokens(text)), finish, False)

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Relay the upstream's SSE stream, yielding each chunk's ``delta.content``."""
        import httpx

        try:
            async with self._client.stream("POST", "/v1/chat/completions",
                                           json=self._body(req, True)) as r:
                if r.status_code >= 400:
                    raise UpstreamError(502, f"the upstream model server answered HTTP {r.status_code}")
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    try:
                        piece = json.loads(data)["choices"][0].get("delta", {}).get("content")
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        raise UpstreamError(502, "the upstream stream is not OpenAI chunks") from exc
                    if piece:
                        yield piece
        except httpx.TimeoutException as exc:
            raise UpstreamError(504, "the upstream model server timed out") from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(502, f"the upstream model server failed: {type(exc).__name__}") from exc

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


class LocalModelBackend:
    """The local SmolLM2 model, with generation run in a worker thread.

    Imports :mod:`distillguard.model` lazily; raises :class:`DependencyError` if that module or
    its weights are unavailable. Concurrent requests are serialised through one lock (the
    batched path with per-row account payloads is future work; see docs/gateway.md).
    """

    def __init__(self) -> None:
        from distillguard.errors import DependencyError

        try:
            import distillguard.model as model
        except ImportError as exc:
            raise DependencyError(
                "the local model backend needs distillguard.model (SmolLM2); it is not available: "
                f"{exc}. Use --backend fake or --backend openai --upstream-url URL.") from exc
        self._model = model
        self._lock = threading.Lock()

    def _generate(self, req: CompletionRequest) -> Completion:
        gen = getattr(self._model, "generate", None)
        if gen is None:
            raise UpstreamError(502, "distillguard.model has no generate() function")
        with self._lock:
            out = gen([req.prompt], max_new_tokens=req.max_tokens)
        text = out[0] if isinstance(out, list) else str(out)
        return Completion(str(text), _count_tokens(req.prompt), _count_tokens(str(text)), "length", False)

    async def complete(self, req: CompletionRequest) -> Completion:
        """Generate in a worker thread."""
        return await asyncio.to_thread(self._generate, req)

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str]:
        """Yield the whole generation as one piece."""
        c = await self.complete(req)
        yield c.text
