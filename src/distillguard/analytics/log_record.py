"""The canonical request-log record: field list, typed record, and validation.

One record per API request. ``ts``, ``account_id`` and one of ``prompt`` / ``messages`` are
required; everything else is optional. The gateway builds records with :func:`validate_record`
so that what it writes is exactly what ``distillguard scan`` reads. Pure stdlib.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FIELDS",
    "MAX_FIELD_CHARS",
    "PARAM_FIELDS",
    "LogRecord",
    "Rejection",
    "loads_line",
    "loads_text",
    "parse_ts",
    "validate_record",
]

FIELDS: tuple[str, ...] = (
    "ts",
    "account_id",
    "prompt",
    "messages",
    "request_id",
    "api_key_id",
    "ip",
    "user_agent",
    "org_id",
    "endpoint",
    "model",
    "params",
    "prompt_tokens",
    "completion_tokens",
    "response",
    "status",
    "latency_ms",
    "session_id",
)
PARAM_FIELDS: tuple[str, ...] = ("temperature", "max_tokens", "n", "logprobs", "top_logprobs", "seed")
# A prompt longer than this is a broken client or an attack on the scanner, not a request.
MAX_FIELD_CHARS = 200_000
# Timestamps outside [2015, 2100) are clock bugs or unit mistakes (ms sent as s).
_TS_MIN = 1_420_070_400.0
_TS_MAX = 4_102_444_800.0
_STR_FIELDS = (
    "account_id",
    "request_id",
    "api_key_id",
    "ip",
    "user_agent",
    "org_id",
    "endpoint",
    "model",
    "response",
    "session_id",
)
_INT_FIELDS = ("prompt_tokens", "completion_tokens", "status")


@dataclass(frozen=True)
class Rejection:
    """Why a raw record was quarantined (``reason`` is a short stable code, ``detail`` prose)."""

    reason: str
    detail: str


@dataclass(frozen=True)
class LogRecord:
    """A validated request. ``prompt`` is the last user turn; ``n_turns`` counts user turns."""

    ts: float
    account_id: str
    prompt: str
    n_turns: int = 1
    request_id: str | None = None
    api_key_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    org_id: str | None = None
    endpoint: str | None = None
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    response: str | None = None
    status: int | None = None
    latency_ms: float | None = None
    session_id: str | None = None

    def flat(self) -> dict[str, Any]:
        """Return the flat row the engines read (``params`` spread into typed columns)."""
        p = self.params
        return {
            "ts": self.ts,
            "account_id": self.account_id,
            "prompt": self.prompt,
            "n_turns": self.n_turns,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "endpoint": self.endpoint,
            "model": self.model,
            "temperature": _opt_float(p.get("temperature")),
            "max_tokens": _opt_int(p.get("max_tokens")),
            "n": _opt_int(p.get("n")),
            "logprobs": bool(p.get("logprobs")) if p.get("logprobs") is not None else None,
            "top_logprobs": _opt_int(p.get("top_logprobs")),
        }


def _opt_float(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _opt_int(v: Any) -> int | None:
    # Integers are stored as int64: a larger one is a broken client, not a parameter.
    ok = isinstance(v, int) and not isinstance(v, bool) and -(2**63) <= v < 2**63
    return int(v) if ok else None


def parse_ts(value: Any) -> float | None:
    """Return epoch seconds for an RFC 3339 string or a number; ``None`` if unparseable or absurd."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        ts = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = _dt.datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:  # RFC 3339 requires an offset; read naive times as UTC
            parsed = parsed.replace(tzinfo=_dt.UTC)
        ts = parsed.timestamp()
    else:
        return None
    if not (_TS_MIN <= ts < _TS_MAX) or ts != ts:
        return None
    return ts


def _prompt_from_messages(messages: Any) -> tuple[str, int] | Rejection:
    if not isinstance(messages, list) or not messages:
        return Rejection("bad_type", "'messages' must be a non-empty list of {role, content} objects")
    user_turns: list[str] = []
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            return Rejection("bad_type", "each message must be an object with a string 'role'")
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if content is not None and not isinstance(content, str):
            return Rejection("bad_type", "message 'content' must be a string or a list of parts")
        if m["role"] == "user" and content:
            user_turns.append(content)
    if not user_turns:
        return Rejection("missing_field", "'messages' has no user turn with content")
    return user_turns[-1], len(user_turns)


def validate_record(raw: Any) -> LogRecord | Rejection:
    """Validate one decoded JSON object against the canonical schema.

    Returns a :class:`LogRecord`, or a :class:`Rejection` whose ``reason`` is one of
    ``not_object``, ``missing_field``, ``bad_type``, ``bad_timestamp``, ``too_large``.
    Never raises for bad input.
    """
    if not isinstance(raw, dict):
        return Rejection("not_object", f"a record must be a JSON object, got {type(raw).__name__}")
    for name in ("ts", "account_id"):
        if raw.get(name) is None:
            return Rejection("missing_field", f"required field '{name}' is missing")
    ts = parse_ts(raw["ts"])
    if ts is None:
        return Rejection(
            "bad_timestamp",
            f"'ts' must be RFC 3339 or epoch seconds in [2015, 2100); got {str(raw['ts'])[:40]!r}",
        )
    for name in _STR_FIELDS:
        v = raw.get(name)
        if v is not None and not isinstance(v, str):
            return Rejection("bad_type", f"'{name}' must be a string, got {type(v).__name__}")
        if isinstance(v, str) and len(v) > MAX_FIELD_CHARS:
            return Rejection("too_large", f"'{name}' has {len(v)} characters (max {MAX_FIELD_CHARS})")
    if not raw["account_id"]:
        return Rejection("missing_field", "'account_id' is empty")
    prompt = raw.get("prompt")
    if prompt is not None:
        if not isinstance(prompt, str):
            return Rejection("bad_type", f"'prompt' must be a string, got {type(prompt).__name__}")
        n_turns = 1
    elif raw.get("messages") is not None:
        got = _prompt_from_messages(raw["messages"])
        if isinstance(got, Rejection):
            return got
        prompt, n_turns = got
    else:
        return Rejection("missing_field", "one of 'prompt' or 'messages' is required")
    if len(prompt) > MAX_FIELD_CHARS:
        return Rejection("too_large", f"the prompt has {len(prompt)} characters (max {MAX_FIELD_CHARS})")
    params = raw.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        return Rejection("bad_type", f"'params' must be an object, got {type(params).__name__}")
    for name in _INT_FIELDS:
        v = raw.get(name)
        if v is not None and _opt_int(v) is None:
            return Rejection("bad_type", f"'{name}' must be a 64-bit integer, got {str(v)[:30]!r}")
    lat = raw.get("latency_ms")
    if lat is not None and (not isinstance(lat, (int, float)) or isinstance(lat, bool)):
        return Rejection("bad_type", f"'latency_ms' must be a number, got {type(lat).__name__}")
    for name in ("temperature",):
        v = params.get(name)
        if v is not None and _opt_float(v) is None:
            return Rejection("bad_type", f"params.{name} must be a number, got {type(v).__name__}")
    for name in ("max_tokens", "n", "top_logprobs", "seed"):
        v = params.get(name)
        if v is not None and _opt_int(v) is None:
            return Rejection("bad_type", f"params.{name} must be a 64-bit integer, got {str(v)[:30]!r}")
    return LogRecord(
        ts=ts,
        account_id=raw["account_id"],
        prompt=prompt,
        n_turns=n_turns,
        request_id=raw.get("request_id"),
        api_key_id=raw.get("api_key_id"),
        ip=raw.get("ip"),
        user_agent=raw.get("user_agent"),
        org_id=raw.get("org_id"),
        endpoint=raw.get("endpoint"),
        model=raw.get("model"),
        params=dict(params),
        prompt_tokens=raw.get("prompt_tokens"),
        completion_tokens=raw.get("completion_tokens"),
        response=raw.get("response"),
        status=raw.get("status"),
        latency_ms=lat,
        session_id=raw.get("session_id"),
    )


def loads_line(line: bytes) -> LogRecord | Rejection:
    """Decode one JSONL line (bytes) and validate it; invalid UTF-8 / JSON become rejections."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("invalid_utf8", f"the line is not valid UTF-8 ({exc.reason} at byte {exc.start})")
    return loads_text(text)


def loads_text(text: str) -> LogRecord | Rejection:
    """Parse one decoded JSONL line and validate it; invalid JSON becomes a rejection."""
    if len(text) > 4 * MAX_FIELD_CHARS:
        return Rejection("too_large", f"the line has {len(text)} characters")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("invalid_json", f"{exc.msg} at column {exc.colno}")
    return validate_record(raw)
