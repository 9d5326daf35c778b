"""Risk-adaptive policy: an online per-account scorer, risk bands, and rate limits via ``limits``.

The scorer is deliberately simple and explainable — three signals, each in [0, 1]:

* ``rate``: requests in the last ``window_s`` seconds per second (span at least 1 s), relative
  to ``high_rate_per_s``;
* ``template``: share of recent prompts whose normalised form (digits and case stripped)
  repeats, i.e. templated harvesting;
* ``extraction``: share of requests asking for logprobs or very long outputs.

``risk = max(imported, 0.4 rate + 0.4 template + 0.2 extraction)`` where ``imported`` comes from
a ``scan`` report or an intel file. Bands map risk to actions. Research-tier accounts are
scored but exempt from automatic action. Redis failures fail OPEN (request served, warning
logged, ``dg_ratelimit_errors_total`` incremented): availability over a limit that a single
replica cannot check.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Decision", "OnlineScorer", "RateLimiter", "band_for"]

_log = logging.getLogger("distillguard.gateway")
_NORM = re.compile(r"[0-9]+|\s+")

# (lower risk bound, band, limit divisor, logprobs allowed, watermark delta, blocked)
BANDS: tuple[tuple[float, str, int, bool, float, bool], ...] = (
    (0.9, "block", 1, False, 4.0, True),
    (0.75, "restrict", 8, False, 4.0, False),
    (0.5, "throttle", 4, True, 3.0, False),
    (0.0, "normal", 1, True, 2.0, False),
)


@dataclass(frozen=True)
class Decision:
    """What the policy says for one request of one account."""

    band: str
    risk: float
    limit_divisor: int
    logprobs_allowed: bool
    watermark_delta: float
    blocked: bool
    reasons: tuple[str, ...]


def band_for(risk: float, exempt: bool, reasons: tuple[str, ...] = ()) -> Decision:
    """Return the decision for a risk in [0, 1]; exempt (research) accounts always get 'normal'."""
    if not (0.0 <= risk <= 1.0) or math.isnan(risk):
        raise ValueError(f"risk must be in [0, 1]. Got {risk!r} instead.")
    if exempt:
        return Decision("normal", risk, 1, True, 2.0, False, reasons)
    for lo, band, div, lp, delta, blocked in BANDS:
        if risk >= lo:
            return Decision(band, risk, div, lp, delta, blocked, reasons)
    raise ValueError("unreachable band table")  # pragma: no cover


_RECENT = 200  # requests per account the template and extraction shares look at


@dataclass
class _State:
    # The last _RECENT requests, with running tallies so that a request costs O(1), not a
    # pass over the window: the scorer runs on every request of the gateway's hot path.
    times: deque[float] = field(default_factory=deque)
    hashes: deque[str] = field(default_factory=deque)
    flags: deque[int] = field(default_factory=deque)
    hash_counts: dict[str, int] = field(default_factory=dict)
    n_flags: int = 0

    def push(self, now: float, digest: str, flag: int) -> None:
        if len(self.hashes) == _RECENT:
            self.times.popleft()
            old = self.hashes.popleft()
            left = self.hash_counts[old] - 1
            if left:
                self.hash_counts[old] = left
            else:
                del self.hash_counts[old]
            self.n_flags -= self.flags.popleft()
        self.times.append(now)
        self.hashes.append(digest)
        self.hash_counts[digest] = self.hash_counts.get(digest, 0) + 1
        self.flags.append(flag)
        self.n_flags += flag


class OnlineScorer:
    """Per-account online risk from rate, template reuse and extraction-style parameters."""

    def __init__(self, high_rate_per_s: float = 5.0, window_s: float = 30.0,
                 min_requests: int = 20) -> None:
        self.high_rate_per_s = high_rate_per_s
        self.window_s = window_s
        self.min_requests = min_requests
        self._states: dict[str, _State] = {}
        self.imported: dict[str, float] = {}

    def update(self, account_id: str, prompt: str, params: dict[str, Any], now: float
               ) -> tuple[float, tuple[str, ...]]:
        """Fold one request in; return (risk, reasons)."""
        s = self._states.get(account_id)
        if s is None:
            s = self._states[account_id] = _State()
        norm = _NORM.sub(" ", prompt.lower()).strip()
        extraction = bool(params.get("logprobs")) or int(params.get("max_tokens") or 0) >= 2048
        s.push(now, hashlib.sha256(norm.encode("utf-8")).hexdigest()[:16], int(extraction))
        return self.score(account_id, now)

    def score(self, account_id: str, now: float | None = None) -> tuple[float, tuple[str, ...]]:
        """Return the current (risk, reasons) without updating (``now`` defaults to the last request)."""
        s = self._states.get(account_id)
        imported = self.imported.get(account_id, 0.0)
        reasons: list[str] = []
        online = 0.0
        if s is not None and len(s.hashes) >= self.min_requests:
            t = now if now is not None else s.times[-1]
            first = bisect.bisect_left(s.times, t - self.window_s)  # times arrive in order
            n_recent = len(s.times) - first
            per_s = n_recent / max(1.0, t - s.times[first]) if n_recent else 0.0
            rate = min(1.0, per_s / self.high_rate_per_s)
            template = 1.0 - len(s.hash_counts) / len(s.hashes)
            extraction = s.n_flags / len(s.flags)
            online = 0.4 * rate + 0.4 * template + 0.2 * extraction
            if rate > 0.5:
                reasons.append(f"request rate {per_s:.1f}/s")
            if template > 0.5:
                reasons.append(f"{template:.0%} of recent prompts reuse a template")
            if extraction > 0.5:
                reasons.append(f"{extraction:.0%} of requests ask for logprobs or long outputs")
        if imported > online:
            reasons.append(f"imported risk {imported:.2f} (scan/intel)")
        return min(1.0, max(online, imported)), tuple(reasons)


def _swept_memory_storage() -> Any:
    """limits' MemoryStorage, with expired counters swept once a second on the caller's thread.

    The stock storage hands expiry to a ``threading.Timer`` that lives 10 ms and is started anew
    by the next hit: a new thread about every 10 ms under load, and each start waits for the GIL,
    which made the limiter the costliest step of a request. Counters are also expired lazily
    when read, so sweeping less often only delays freeing the memory of idle keys. The hook is
    the storage's own (name-mangled) scheduling method; if a future ``limits`` renames it, the
    stock timer simply stays in charge.
    """
    from limits.storage import MemoryStorage

    class SweptMemoryStorage(MemoryStorage):
        STORAGE_SCHEME = ["distillguard+memory"]  # noqa: RUF012 - limits reads it; "memory" stays stock
        _next_sweep = 0.0

        def _MemoryStorage__schedule_expiry(self) -> None:
            now = time.monotonic()
            if now >= self._next_sweep:
                self._next_sweep = now + 1.0
                expire = getattr(self, "_MemoryStorage__expire_events", None)
                if expire is not None:
                    expire()

    return SweptMemoryStorage()


class RateLimiter:
    """Per-key and per-account request and token limits on ``limits`` (memory or Redis)."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int,
                 redis_url: str | None = None, prefix: str = "dg") -> None:
        from limits import storage, strategies

        self._rpm = requests_per_minute
        self._tpm = tokens_per_minute
        self._prefix = prefix
        self._remote = bool(redis_url)
        self._storage: Any = (storage.storage_from_string(redis_url, key_prefix=prefix) if redis_url
                              else _swept_memory_storage())
        # Sliding-window counters (the previous minute's count, weighted by how much of it is
        # still inside the window, plus this minute's): O(1) per hit, and the same semantics in
        # memory and in Redis. A moving window keeps one entry per unit charged (per *token* on
        # the token budget) and re-slices those lists every 10 ms: the costliest step of a request.
        self._limiter: Any = strategies.SlidingWindowCounterRateLimiter(self._storage)
        self.errors = 0

    def _item(self, amount: int, divisor: int) -> Any:
        from limits import RateLimitItemPerMinute

        return RateLimitItemPerMinute(max(1, amount // divisor))

    def hit(self, key_id: str, account_id: str, tokens: int, divisor: int = 1) -> str | None:
        """Consume one request and ``tokens`` tokens; return the exceeded limit's name or None."""
        checks = (
            (self._item(self._rpm, divisor), ("key", key_id), 1, "requests per minute per key"),
            (self._item(self._rpm, divisor), ("acct", account_id), 1, "requests per minute per account"),
            (self._item(self._tpm, divisor), ("tok", account_id), max(1, tokens),
             "tokens per minute per account"),
        )
        try:
            for item, ident, cost, name in checks:
                if not self._limiter.hit(item, self._prefix, *ident, cost=cost):
                    return f"{name} ({item.amount})"
        except Exception as exc:  # storage down: fail open, loudly
            self.errors += 1
            _log.warning("rate-limit storage failed (%s); failing open", type(exc).__name__)
        return None

    async def ahit(self, key_id: str, account_id: str, tokens: int, divisor: int = 1) -> str | None:
        """:meth:`hit` for the event loop: with Redis the three checks are network round trips
        (~0.8 ms together on loopback), so they run in a worker thread and the loop serves other
        requests meanwhile; in memory they are microseconds and run inline."""
        if self._remote:
            return await asyncio.to_thread(self.hit, key_id, account_id, tokens, divisor)
        return self.hit(key_id, account_id, tokens, divisor)

    def reset(self) -> None:
        """Clear all counters (tests)."""
        try:
            self._storage.reset()
        except Exception as exc:
            _log.warning("rate-limit reset failed: %s", type(exc).__name__)
