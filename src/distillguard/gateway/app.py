"""FastAPI app factory: OpenAI-compatible endpoints, admin API, dashboard, health and metrics.

Nothing is built at import time; :func:`create_app` takes :class:`Settings` (and optionally a
backend) and wires the store, log writer, rate limiter and scorer into ``app.state``.
"""


import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from distillguard.errors import InputError
from distillguard.gateway.backends import (
    Backend,
    Completion,
    CompletionRequest,
    FakeBackend,
    UpstreamError,
)
from distillguard.gateway.canary import CanaryService
from distillguard.gateway.logwriter import LogWriter
from distillguard.gateway.policy import OnlineScorer, RateLimiter, band_for
from distillguard.gateway.settings import Settings
from distillguard.gateway.store import Account, ApiKey, Store, hash_key, open_store
from distillguard.watermark.keys import SecretKey, load_or_create_key_file

__all__ = ["ApiError", "create_app"]

_log = logging.getLogger("distillguard.gateway")


class ApiError(Exception):
    """An error answered with an OpenAI-style body."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code


def _error(status: int, message: str, type_: str = "invalid_request_error",
           param: str | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": type_, "param": param, "code": code}},
                        status_code=status)


_METRIC_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/models", "/healthz",
                           "/metrics", "/dashboard"})


class _Timing:
    """Request id, timing and Prometheus counts as a plain ASGI middleware (Starlette's
    BaseHTTPMiddleware costs an extra task and memory stream per request)."""

    def __init__(self, app: Any, m_req: Any, m_lat: Any) -> None:
        self.app, self.m_req, self.m_lat = app, m_req, m_lat
        # Labelled children resolved once per label set (the label lookup is most of the cost).
        self._counters: dict[tuple[str, int], Any] = {}
        self._latencies: dict[str, Any] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        rid = "req_" + secrets.token_hex(10)
        state = scope.setdefault("state", {})
        state["t0"], state["request_id"] = t0, rid
        status = [500]

        async def send_wrapped(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)
        try:
            await self.app(scope, receive, send_wrapped)
        finally:
            path = scope.get("path", "")
            # Bounded label set: ids in admin paths and random 404 paths would explode it.
            label = path if path in _METRIC_PATHS else ("/admin" if path.startswith("/admin") else "other")
            counter = self._counters.get((label, status[0]))
            if counter is None:
                counter = self._counters[(label, status[0])] = self.m_req.labels(label, str(status[0]))
            latency = self._latencies.get(label)
            if latency is None:
                latency = self._latencies[label] = self.m_lat.labels(label)
            counter.inc()
            latency.observe(time.perf_counter() - t0)


def _backend_for(settings: Settings, key: SecretKey) -> Backend:
    if settings.backend == "openai":
        from distillguard.gateway.backends import OpenAIUpstreamBackend

        return OpenAIUpstreamBackend(settings.upstream_url or "", settings.upstream_api_key,
                                     settings.upstream_timeout_s)
    if settings.backend == "local":
        from distillguard.gateway.backends import LocalModelBackend

        return LocalModelBackend(key, settings.scheme)
    return FakeBackend()


def _body_schema(chat: bool) -> dict[str, Any]:
    """The request body as OpenAPI documents it (the handlers parse the raw body themselves so
    that every malformed body gets an OpenAI-style 400, not FastAPI's 422)."""
    common: dict[str, Any] = {
        "model": {"type": "string"},
        "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "n": {"type": "integer", "enum": [1]},
        "stream": {"type": "boolean"},
        "logprobs": {"type": "boolean"},
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "seed": {"type": "integer"},
    }
    if chat:
        message = {"type": "object", "required": ["role", "content"], "properties": {
            "role": {"type": "string", "enum": ["system", "user", "assistant"]},
            "content": {"type": "string"}}}
        props, required = {**common, "messages": {"type": "array", "minItems": 1, "items": message}}, \
            ["model", "messages"]
    else:
        props, required = {**common, "prompt": {"type": "string"}}, ["model", "prompt"]
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": props}}}}}


def create_app(settings: Settings, backend: Backend | None = None, store: Store | None = None) -> FastAPI:
    """Return the gateway app. ``backend``/``store`` override the ones the settings describe."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    st = store or open_store(settings.store_url)
    writer = LogWriter(st, settings.spool_path, maxsize=settings.log_queue_size)
    limiter = RateLimiter(settings.requests_per_minute, settings.tokens_per_minute,
                          settings.redis_url, settings.limit_prefix)
    scorer = OnlineScorer()
    for acc in st.list_accounts():
        if acc.risk > 0:
            scorer.imported[acc.account_id] = acc.risk
    key = load_or_create_key_file(settings.key_file, scheme=settings.scheme)
    canaries = CanaryService(key, settings.canary_registry)
    be = backend or _backend_for(settings, key)
    reg = CollectorRegistry()
    m_req = Counter("dg_requests", "Requests by endpoint and status", ["endpoint", "status"], registry=reg)
    m_lat = Histogram("dg_request_latency_seconds", "Gateway request latency", ["endpoint"], registry=reg)
    bands: dict[str, str] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        writer.close()  # graceful shutdown: flush the request log
        aclose = getattr(be, "aclose", None)
        if aclose is not None:
            await aclose()

    app = FastAPI(title="distillguard gateway", version="0.1", lifespan=lifespan)
    app.state.store, app.state.writer, app.state.limiter, app.state.scorer = st, writer, limiter, scorer
    app.state.settings, app.state.canaries = settings, canaries

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.type, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"invalid request: {loc}: {first.get('msg', 'invalid')}", param=loc or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), "invalid_request_error" if exc.status_code < 500
                      else "server_error")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Store or storage outage while authenticating: fail closed (cannot check the key) with
        # a 503 the client may retry, never a bare 500 traceback.
        _log.error("unexpected error: %s", type(exc).__name__)
        return _error(503, "the gateway cannot serve this request right now; retry later",
                      "service_unavailable", code="unavailable")

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> JSONResponse:
        return _error(400, str(exc))

    # dependencies ------------------------------------------------------------------------
    def _bearer(request: Request) -> str:
        auth = request.headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise ApiError(401, "missing API key: send 'Authorization: Bearer <key>'",
                           "authentication_error", code="invalid_api_key")
        return auth[7:].strip()

    # Authenticated keys are reused for settings.auth_cache_s: the store lookup (and its lock,
    # shared with the log writer) leaves the hot path. Keyed by the key's hash, never the key.
    auth_cache: dict[str, tuple[float, tuple[ApiKey, Account]]] = {}

    # async: a sync dependency runs in a worker thread, which costs more than the lookup.
    async def caller(request: Request) -> tuple[ApiKey, Account]:
        secret = _bearer(request)
        digest = hash_key(secret)
        now = time.monotonic()
        hit = auth_cache.get(digest)
        if hit is not None and now - hit[0] < settings.auth_cache_s:
            return hit[1]
        found = st.authenticate(secret)
        if found is None:
            auth_cache.pop(digest, None)
            raise ApiError(401, "invalid or revoked API key", "authentication_error", code="invalid_api_key")
        if settings.auth_cache_s > 0:
            if len(auth_cache) > 100_000:  # bounded: a flood of distinct keys cannot grow it
                auth_cache.clear()
            auth_cache[digest] = (now, found)
        return found

    async def admin(request: Request) -> AsyncIterator[None]:
        token = _bearer(request)
        if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
            raise ApiError(401, "invalid admin token", "authentication_error", code="invalid_admin_token")
        yield
        if request.method != "GET":  # an admin change (block, revoke, risk) applies at once
            auth_cache.clear()

    Caller = Annotated[tuple[ApiKey, Account], Depends(caller)]
    Admin = Annotated[None, Depends(admin)]

    async def _json_body(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
            raise ApiError(413, f"request body larger than {settings.max_body_bytes} bytes")
        raw = await request.body()
        if len(raw) > settings.max_body_bytes:
            raise ApiError(413, f"request body larger than {settings.max_body_bytes} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, f"request body is not valid UTF-8 (byte {exc.start})") from exc
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"request body is not valid JSON: {exc.msg} at column {exc.colno}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def _parse(body: dict[str, Any], chat: bool, account: Account
               ) -> tuple[CompletionRequest, dict[str, Any]]:
        model = body.get("model")
        if not isinstance(model, str):
            raise ApiError(400, "'model' is required and must be a string", param="model")
        if model not in settings.models:
            raise ApiError(404, f"the model {model!r} does not exist; available: {list(settings.models)}",
                           param="model", code="model_not_found")
        messages = None
        if chat:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages or not all(
                    isinstance(m, dict) and isinstance(m.get("role"), str)
                    and isinstance(m.get("content"), (str, type(None))) for m in messages):
                raise ApiError(400, "'messages' must be a non-empty list of {role: str, content: str}",
                               param="messages")
            users = [m["content"] for m in messages if m["role"] == "user" and m.get("content")]
            prompt = users[-1] if users else ""
        else:
            prompt = body.get("prompt")
            if not isinstance(prompt, str):
                raise ApiError(400, "'prompt' is required and must be a string", param="prompt")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 16))
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= 4096:
            raise ApiError(400, "'max_tokens' must be an integer in [1, 4096]", param="max_tokens")
        temperature = body.get("temperature", 1.0)
        if (not isinstance(temperature, (int, float)) or isinstance(temperature, bool)
                or not 0 <= temperature <= 2):
            raise ApiError(400, "'temperature' must be a number in [0, 2]", param="temperature")
        n = body.get("n", 1)
        if n != 1:
            raise ApiError(400, "only n=1 is supported", param="n")
        lp = body.get("logprobs")
        params = {"temperature": float(temperature), "max_tokens": max_tokens, "n": 1,
                  "logprobs": bool(lp) if lp is not None else None,
                  "top_logprobs": tl if isinstance(tl := body.get("top_logprobs"), int) else None,
                  "seed": body.get("seed") if isinstance(body.get("seed"), int) else None}
        req = CompletionRequest(model, prompt, messages, max_tokens, float(temperature), account.account_id)
        return req, params

    def _log_record(request: Request, key: ApiKey, account: Account, req: CompletionRequest,
                    params: dict[str, Any], endpoint: str, status: int, started: float,
                    text: str | None, comp: Completion | None) -> dict[str, Any]:
        keep = settings.retain_text
        digest = hashlib.sha256(req.prompt.encode("utf-8")).hexdigest()
        return {
            "ts": datetime.fromtimestamp(started, UTC).isoformat().replace("+00:00", "Z"),
            "account_id": account.account_id, "request_id": request.state.request_id,
            "api_key_id": key.key_id, "ip": request.client.host if request.client else None,
            "user_agent": request.headers.get("user-agent"), "endpoint": endpoint, "model": req.model,
            # Retention off: the canonical record still needs a prompt, so it holds the hash
            # (template reuse stays detectable by equality; lengths and text features do not).
            "params": params, "prompt": req.prompt if keep else "sha256:" + digest,
            "messages": req.messages if keep else None,
            "prompt_tokens": comp.prompt_tokens if comp else None,
            "completion_tokens": comp.completion_tokens if comp else (len(text.split()) if text else None),
            "response": text if keep else None, "status": status,
            "latency_ms": (time.perf_counter() - request.state.t0) * 1000.0,
            "watermarked": int(comp.watermarked) if comp else 0,
            "prompt_sha256": digest,
        }

    async def _policy(key: ApiKey, account: Account, req: CompletionRequest, params: dict[str, Any]
                      ) -> float:
        if account.status == "blocked":
            raise ApiError(403, "this account is blocked", "permission_error", code="account_blocked")
        # The account row comes with the key (reused for settings.auth_cache_s), so a risk
        # imported by another process (CLI `accounts import-risk`, another replica's admin API)
        # applies within that time.
        scorer.imported[account.account_id] = account.risk
        risk, reasons = scorer.update(account.account_id, req.prompt, params, time.time())
        d = band_for(risk, exempt=account.tier == "research", reasons=reasons)
        if bands.get(account.account_id, "normal") != d.band:
            bands[account.account_id] = d.band
            st.record_action(account.account_id, f"band:{d.band}",
                             f"risk {risk:.2f}: " + ("; ".join(reasons) or "back to normal"), "policy")
        if d.band in settings.canary_bands and account.tier != "research" and canaries.enroll(
                account.account_id):
            st.record_action(account.account_id, "canary:on",
                             f"entered band {d.band} at risk {risk:.2f}; answers now carry canaries",
                             "policy")
        if d.blocked:
            raise ApiError(403, "this account is blocked by the abuse policy", "permission_error",
                           code="account_blocked")
        if params.get("logprobs") and not d.logprobs_allowed:
            raise ApiError(403, "logprobs are disabled for this account", "permission_error",
                           param="logprobs", code="logprobs_disabled")
        exceeded = await limiter.ahit(key.key_id, account.account_id, req.max_tokens, d.limit_divisor)
        if exceeded:
            raise ApiError(429, f"rate limit exceeded: {exceeded}", "rate_limit_error",
                           code="rate_limit_exceeded")
        return d.watermark_delta

    app.add_middleware(_Timing, m_req=m_req, m_lat=m_lat)

    async def _serve(request: Request, who: tuple[ApiKey, Account], chat: bool) -> Response:
        key, account = who
        endpoint = "/v1/chat/completions" if chat else "/v1/completions"
        started = time.time()
        body: dict[str, Any] = {}
        try:
            body = await _json_body(request)
            req, params = _parse(body, chat, account)
        except ApiError as exc:  # rejected input is an outcome too: log it (prompt unknown → "")
            bad = CompletionRequest(str(body.get("model", ""))[:200], "", None, 0,
                                    0.0, account.account_id)
            writer.put(_log_record(request, key, account, bad, {}, endpoint, exc.status, started,
                                   None, None))
            raise
        try:
            delta = await _policy(key, account, req, params)
        except ApiError as exc:
            writer.put(_log_record(request, key, account, req, params, endpoint, exc.status, started,
                                   None, None))
            raise
        req = CompletionRequest(req.model, req.prompt, req.messages, req.max_tokens, req.temperature,
                                req.account_id, delta)
        rid = "chatcmpl-" + request.state.request_id[4:]
        if body.get("stream") is True:
            return StreamingResponse(_sse(request, key, account, req, params, endpoint, started, rid, chat),
                                     media_type="text/event-stream")
        try:
            comp = await be.complete(req)
        except UpstreamError as exc:
            writer.put(_log_record(request, key, account, req, params, endpoint, exc.status, started,
                                   None, None))
            raise ApiError(exc.status, exc.message, "upstream_error") from exc
        text = canaries.restyle(account.account_id, comp.text)
        mark = canaries.mark(account.account_id, req.prompt, text)
        if mark is not None or text != comp.text:
            comp = replace(comp, text=text if mark is None else text.rstrip() + " " + mark)
        writer.put(_log_record(request, key, account, req, params, endpoint, 200, started, comp.text, comp))
        usage = {"prompt_tokens": comp.prompt_tokens, "completion_tokens": comp.completion_tokens,
                 "total_tokens": comp.prompt_tokens + comp.completion_tokens}
        choice: dict[str, Any] = {"index": 0, "finish_reason": comp.finish_reason, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": comp.text}
        else:
            choice["text"] = comp.text
        return JSONResponse({"id": rid, "object": "chat.completion" if chat else "text_completion",
                             "created": int(started), "model": req.model, "choices": [choice],
                             "usage": usage, "distillguard": {"watermarked": comp.watermarked}})

    async def _sse(request: Request, key: ApiKey, account: Account, req: CompletionRequest,
                   params: dict[str, Any], endpoint: str, started: float, rid: str,
                   chat: bool) -> AsyncIterator[str]:
        sent: list[str] = []
        status = 200
        final: Completion | None = None
        obj = "chat.completion.chunk" if chat else "text_completion"

        def chunk(piece: str | None, finish: str | None) -> str:
            delta: dict[str, Any] = {"content": piece} if piece is not None else {}
            c: dict[str, Any] = ({"index": 0, "delta": delta, "finish_reason": finish} if chat
                                 else {"index": 0, "text": piece or "", "finish_reason": finish})
            return "data: " + json.dumps({"id": rid, "object": obj, "created": int(started),
                                          "model": req.model, "choices": [c]}) + "\n\n"
        try:
            if chat:
                yield "data: " + json.dumps({"id": rid, "object": obj, "created": int(started),
                                             "model": req.model, "choices": [{"index": 0, "delta": {
                                                 "role": "assistant"}, "finish_reason": None}]}) + "\n\n"
            restyle = canaries.rewriter(account.account_id)
            async for item in be.stream(req):
                if isinstance(item, Completion):
                    final = item
                    continue
                piece = item if restyle is None else restyle.feed(item)
                if piece:  # the rewriter holds back at most the last two words
                    sent.append(piece)
                    yield chunk(piece, None)
            if restyle is not None and (rest := restyle.finish()):
                sent.append(rest)
                yield chunk(rest, None)
            mark = canaries.mark(account.account_id, req.prompt, "".join(sent))
            if mark is not None:
                sent.append(" " + mark)
                yield chunk(" " + mark, None)
            yield chunk(None, final.finish_reason if final else "stop")
            yield "data: [DONE]\n\n"
        except UpstreamError as exc:
            status = exc.status
            yield "data: " + json.dumps({"error": {"message": exc.message, "type": "upstream_error",
                                                   "param": None, "code": None}}) + "\n\n"
        except BaseException:
            status = 499  # client went away mid-stream: keep what was sent
            raise
        finally:
            # The log keeps what was actually sent; the backend's totals where it gave them.
            text = "".join(sent)
            comp = (replace(final, text=text) if final is not None and status == 200 else
                    Completion(text, len(req.prompt.split()), len(text.split()), "length",
                               bool(final.watermarked) if final else be.watermarks))
            writer.put(_log_record(request, key, account, req, params, endpoint, status, started, text, comp))

    @app.post("/v1/chat/completions", openapi_extra=_body_schema(chat=True))
    async def chat_completions(request: Request, who: Caller) -> Response:
        """OpenAI chat completions (JSON or SSE with ``stream: true``)."""
        return await _serve(request, who, chat=True)

    @app.post("/v1/completions", openapi_extra=_body_schema(chat=False))
    async def completions(request: Request, who: Caller) -> Response:
        """OpenAI legacy completions."""
        return await _serve(request, who, chat=False)

    @app.get("/v1/models")
    async def models(who: Caller) -> dict[str, Any]:
        """List served models."""
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0,
                                            "owned_by": "distillguard"} for m in settings.models]}

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness plus log-writer state."""
        return {"status": "ok", "log_pending": writer.pending(), "log_written": writer.written,
                "log_spooled": writer.spooled, "ratelimit_errors": limiter.errors}

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(reg), media_type="text/plain; version=0.0.4")

    from distillguard.gateway.admin import add_admin_routes

    add_admin_routes(app, st, scorer, Admin)

    @app.get("/dashboard", response_class=HTMLResponse)
    async def dashboard() -> HTMLResponse:
        """The admin dashboard page (data comes from the admin API with the token)."""
        from distillguard.gateway.admin import dashboard_html

        return HTMLResponse(dashboard_html())

    return app
