"""Backends that produce completions: a fast deterministic fake, an OpenAI-compatible upstream,
and the local SmolLM2 model (batched, watermarked per account).

Every backend implements ``async complete(req) -> Completion`` and ``stream(req)``: an async
iterator of text pieces that may end with one :class:`Completion` carrying the totals (finish
reason, token counts, watermark) of what was streamed. Upstream failures raise
:class:`UpstreamError` carrying the HTTP status the gateway should answer with (502 for errors,
504 for timeouts).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
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

    # Whether this backend's answers carry our watermark (logged even for a stream cut short).
    watermarks: bool

    async def complete(self, req: CompletionRequest) -> Completion:
        """Return the whole completion."""
        ...

    def stream(self, req: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield the completion text piece by piece, then (optionally) its totals."""
        ...


def _count_tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0


class FakeBackend:
    """Deterministic, instant text derived from the prompt hash (for tests and benchmarks)."""

    _WORDS = ("alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda")
    watermarks = False

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

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield one pseudo-word at a time, then the totals."""
        words = self._words(req)
        for i, w in enumerate(words):
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            yield (" " if i else "") + w
        yield Completion(" ".join(words), _count_tokens(req.prompt), len(words), "length", False)


class OpenAIUpstreamBackend:
    """Forwards to any OpenAI-compatible ``/v1/chat/completions``; output is not watermarked.

    The HTTP client is aiohttp: on this path it costs ~0.3 ms of CPU per request where httpx
    costs ~2.5 ms (measured side by side), which decides how many requests/s one gateway
    process can relay. The session is created on first use, inside the serving event loop.
    """

    watermarks = False

    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 30.0) -> None:
        import aiohttp  # noqa: F401 - imported now: importing on the first request stalls the loop ~0.2 s

        self._url = base_url.rstrip("/") + "/v1/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout_s = timeout_s
        self._session: Any = None

    def _client(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            # Enough pooled connections for bursts: reopening a TCP connection per upstream
            # request would cost more than the relay itself.
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=512))
        return self._session

    def _body(self, req: CompletionRequest, stream: bool) -> dict[str, Any]:
        messages = req.messages or [{"role": "user", "content": req.prompt}]
        return {"model": req.model, "messages": messages, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "stream": stream}

    async def complete(self, req: CompletionRequest) -> Completion:
        """POST to the upstream and parse its answer."""
        with _upstream_errors():
            async with self._client().post(self._url, json=self._body(req, False)) as r:
                if r.status >= 400:
                    raise UpstreamError(502, f"the upstream model server answered HTTP {r.status}")
                raw = await r.read()
        try:
            data = json.loads(raw)
            text = data["choices"][0]["message"]["content"] or ""
            usage = data.get("usage") or {}
            finish = data["choices"][0].get("finish_reason") or "stop"
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise UpstreamError(502, "the upstream answer is not an OpenAI chat completion") from exc
        return _upstream_completion(req, text, usage, finish)

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Relay the upstream's SSE stream: each chunk's ``delta.content``, then the totals."""
        pieces: list[str] = []
        finish, usage = "stop", dict[str, Any]()
        with _upstream_errors():
            async with self._client().post(self._url, json=self._body(req, True)) as r:
                if r.status >= 400:
                    raise UpstreamError(502, f"the upstream model server answered HTTP {r.status}")
                async for raw in r.content:
                    line = raw.decode("utf-8", "replace").strip()
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    try:
                        chunk = json.loads(data)
                        usage = chunk.get("usage") or usage
                        choice = chunk["choices"][0] if chunk.get("choices") else {}
                        piece = choice.get("delta", {}).get("content")
                        finish = choice.get("finish_reason") or finish
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        raise UpstreamError(502, "the upstream stream is not OpenAI chunks") from exc
                    if piece:
                        pieces.append(piece)
                        yield piece
        yield _upstream_completion(req, "".join(pieces), usage, finish)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


@contextmanager
def _upstream_errors() -> Iterator[None]:
    """Map the HTTP client's failures to the status the gateway answers: 504 / 502."""
    import aiohttp

    try:
        yield
    except TimeoutError as exc:
        raise UpstreamError(504, "the upstream model server timed out") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamError(502, f"the upstream model server failed: {type(exc).__name__}") from exc


def _upstream_completion(req: CompletionRequest, text: str, usage: dict[str, Any], finish: str) -> Completion:
    """The totals of an upstream answer, counting words where it sent no usage."""
    return Completion(text, int(usage.get("prompt_tokens") or _count_tokens(req.prompt)),
                      int(usage.get("completion_tokens") or _count_tokens(text)), finish, False)


@dataclass
class _Job:
    req: CompletionRequest
    future: asyncio.Future[Completion]
    loop: asyncio.AbstractEventLoop
    # Streaming: called (from the model thread) with each new text piece of this row.
    on_piece: Any = None


class LocalModelBackend:
    """The local SmolLM2 model: concurrent requests are batched, each row watermarked with the
    caller's account in its payload (several accounts share one batch).

    One worker thread owns the model. It takes the first waiting request, then gathers others
    for up to ``window_s`` (or until ``max_batch``), groups them by (temperature, watermark
    strength) and runs one batched ``generate`` per group with ``max_new_tokens`` = the group's
    largest request; shorter requests are cut to their own ``max_tokens``. Batching trades a
    few milliseconds of waiting for several times the throughput (docs/benchmarks.md).

    Streaming is per token: the batched ``generate`` call reports every step, and each
    streaming row's new text goes to its caller at once (time to first token = the batching
    window plus the prompt's prefill, not the whole answer).
    """

    watermarks = True

    def __init__(self, key: Any, scheme: str = "kgw", *, generator: Any = None, max_batch: int = 16,
                 window_s: float = 0.02) -> None:
        from distillguard.errors import DependencyError
        from distillguard.watermark import schemes
        from distillguard.watermark.payload import account_id

        if generator is None:
            try:
                from distillguard.model.generate import Generator
            except ImportError as exc:
                raise DependencyError(
                    "the local model backend needs torch and transformers (pip install "
                    f"'distillguard[model]'): {exc}. Use --backend fake or --backend openai.") from exc
            generator = Generator.load()
        self._gen = generator
        self._key = key
        self._scheme_cls: Any = schemes.get(scheme)
        self._account_id = account_id
        self._schemes: dict[float, Any] = {}
        self.max_batch, self.window_s = max_batch, window_s
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self.batches: list[int] = []   # sizes of the batches run (metrics, tests)
        self._thread = threading.Thread(target=self._worker, name="dg-local-model", daemon=True)
        self._thread.start()

    def _scheme(self, delta: float) -> Any:
        if delta not in self._schemes:
            self._schemes[delta] = self._build_scheme(delta)
        return self._schemes[delta]

    def _build_scheme(self, delta: float) -> Any:
        # Payload mode: the watermark carries a 32-bit keyed account id. Only green-list
        # schemes have a strength; the sampling scheme is distortion-free and ignores delta.
        from distillguard.watermark import GumbelConfig, KGWConfig

        if self._scheme_cls.name == "kgw":
            return self._scheme_cls(KGWConfig(delta=delta, payload_bits=32), self._key)
        return self._scheme_cls(GumbelConfig(payload_bits=32), self._key)

    def _worker(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs = [first]
            deadline = time.monotonic() + self.window_s
            while len(jobs) < self.max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                jobs.append(nxt)
            groups: dict[tuple[float, float], list[_Job]] = {}
            for j in jobs:
                groups.setdefault((j.req.temperature, j.req.watermark_delta), []).append(j)
            for (temperature, delta), group in groups.items():
                self._run(group, temperature, delta)

    def _run(self, group: list[_Job], temperature: float, delta: float) -> None:
        from distillguard.model.streaming import IncrementalText

        self.batches.append(len(group))
        decode = self._decode
        texts = {i: IncrementalText(decode) for i, j in enumerate(group) if j.on_piece is not None}

        def on_tokens(i: int, ids: Any) -> None:
            job, inc = group[i], texts.get(i)
            if inc is not None and len(ids) <= job.req.max_tokens and (piece := inc.update(ids)):
                job.on_piece(piece)

        try:
            gen = self._gen.with_scheme(self._scheme(delta))
            prompts = [self._prompt(j.req) for j in group]
            payloads = [self._account_id(self._key, j.req.account_id) for j in group]
            streaming = {"on_tokens": on_tokens} if texts else {}
            outs = gen.generate(prompts, payloads, max_new_tokens=max(j.req.max_tokens for j in group),
                                temperature=temperature, batch_size=self.max_batch, **streaming)
        except Exception as exc:  # hand the error to every waiting request
            for j in group:
                j.loop.call_soon_threadsafe(_settle, j.future, None, exc)
            return
        for i, (j, g) in enumerate(zip(group, outs, strict=True)):
            ids = g.token_ids[: j.req.max_tokens]
            cut = len(ids) < len(g.token_ids)
            text = decode(ids) if cut else g.text
            if i in texts and (rest := texts[i].finish(text)):
                j.on_piece(rest)
            comp = Completion(text, g.prompt_tokens, min(g.completion_tokens, j.req.max_tokens),
                              "length" if cut else g.finish_reason, True)
            j.loop.call_soon_threadsafe(_settle, j.future, comp, None)

    def _decode(self, ids: Any) -> str:
        return str(self._gen.tokenizer.decode(list(ids), skip_special_tokens=True))

    @staticmethod
    def _prompt(req: CompletionRequest) -> Any:
        if req.messages:
            return [{"role": m["role"], "content": m.get("content") or ""} for m in req.messages]
        return req.prompt

    async def complete(self, req: CompletionRequest) -> Completion:
        """Queue the request for the next batch and wait for its row."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Completion] = loop.create_future()
        self._queue.put(_Job(req, fut, loop))
        return await fut

    async def stream(self, req: CompletionRequest) -> AsyncIterator[str | Completion]:
        """Yield the answer's text as the model writes it, then the totals."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Completion] = loop.create_future()
        pieces: asyncio.Queue[str] = asyncio.Queue()

        def on_piece(piece: str) -> None:
            loop.call_soon_threadsafe(pieces.put_nowait, piece)

        self._queue.put(_Job(req, fut, loop, on_piece))
        # Pieces are queued on the loop before the row's future is settled (same thread, FIFO
        # callbacks), so "future done and no piece waiting" means the answer is all out.
        while not (fut.done() and pieces.empty()):
            getter = asyncio.ensure_future(pieces.get())
            either: set[asyncio.Future[Any]] = {getter, fut}
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                got = getter.done()
                if not got:
                    getter.cancel()
            if got:
                yield getter.result()
        yield fut.result()  # raises the generation error, if any

    async def aclose(self) -> None:
        """Stop the worker after the requests already queued."""
        self._queue.put(None)


def _settle(fut: asyncio.Future[Completion], value: Completion | None, exc: BaseException | None) -> None:
    if fut.done():  # the client went away
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)  # type: ignore[arg-type]
