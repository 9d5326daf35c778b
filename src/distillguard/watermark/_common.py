"""Machinery shared by the keyed schemes: construction, key rotation, input checks, results."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from distillguard import stats
from distillguard.errors import ConfigError, InputError
from distillguard.watermark._tuples import as_token_array, generation_contexts
from distillguard.watermark.base import Detection, PayloadEstimate, Span, WatermarkScheme
from distillguard.watermark.keys import KeyRing, SecretKey, as_keyring
from distillguard.watermark.payload import PayloadCodec, TraceEvidence, TraceResult, trace_result
from distillguard.watermark.prf import pair_prf

__all__ = ["KeyedScheme", "check_int", "check_keyed_fields", "check_real"]


def check_int(cls: str, name: str, value: object, lo: int, hi: int | None = None) -> None:
    """Raise ConfigError unless ``value`` is an int in [lo, hi]."""
    ok = (
        isinstance(value, int) and not isinstance(value, bool) and value >= lo and (hi is None or value <= hi)
    )
    if not ok:
        rng = f"[{lo}, {hi}]" if hi is not None else f"≥ {lo}"
        raise ConfigError(f"The {name!r} parameter of {cls} must be an int {rng}. Got {value!r} instead.")


def check_real(
    cls: str, name: str, value: object, lo: float, hi: float, *, open_lo: bool = True, open_hi: bool = True
) -> None:
    """Raise ConfigError unless ``value`` is a finite real in the given interval."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not ok:
        interval = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise ConfigError(
            f"The {name!r} parameter of {cls} must be a float in {interval}. Got {value!r} instead."
        )


def check_keyed_fields(name: str, config: Any, max_chunk_bits: int) -> None:
    """Validate the fields every keyed scheme's config shares: context width, minimum scored
    tuples and the payload layout (0 or 32–64 payload bits, checksum, bits per chunk, anchor
    slots)."""
    check_int(name, "context_width", config.context_width, 1, 64)
    check_int(name, "min_scored", config.min_scored, 1)
    check_int(name, "payload_bits", config.payload_bits, 0, 64)
    if 0 < config.payload_bits < 32:
        raise ConfigError(
            f"The 'payload_bits' parameter of {name} must be 0 (no payload) or in [32, 64]. "
            f"Got {config.payload_bits!r} instead."
        )
    check_int(name, "checksum_bits", config.checksum_bits, 0, 32)
    check_int(name, "chunk_bits", config.chunk_bits, 1, max_chunk_bits)
    check_int(name, "anchor_chunks", config.anchor_chunks, 0, 64)


class KeyedScheme(WatermarkScheme):
    """A scheme built from a frozen config and a key (or a KeyRing of rotated keys).

    ``process`` always uses the ring's primary key. ``detect`` tests every key in the ring;
    with more than one it reports the best and corrects its p-value with Šidák's formula for
    the number of keys (exact: under the null, p-values from different keys are independent).
    """

    config_class: ClassVar[type]

    def __init__(self, config: Any = None, key: SecretKey | KeyRing | bytes | None = None) -> None:
        if config is None:
            config = self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.config_class.__name__}. "
                f"Got {type(config).__name__} instead."
            )
        if key is None:
            raise ConfigError(f"{type(self).__name__} needs a secret key (SecretKey, KeyRing or 32 bytes).")
        self.config: Any = config
        self.keyring = as_keyring(key)
        self._codecs: dict[str, PayloadCodec] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r}, key_ids={list(self.keyring.key_ids)})"

    @property
    def payload_mode(self) -> bool:
        """True when the config embeds account ids (``payload_bits > 0``)."""
        return bool(self.config.payload_bits)

    def _pair_values(self, purpose: str, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The keyed PRF value (uint64) of each (context tokens, token) pair under the primary key.

        For ground truth in experiments (the watermark-stealing bench): ``contexts`` is
        (n, context_width) token ids, ``tokens`` (n,). Payload mode is refused: there a pair's
        colour depends on the account, so "green" alone means nothing.
        """
        width = int(self.config.context_width)
        if self.payload_mode:
            raise ConfigError(f"{self.name}: per-pair ground truth needs a scheme without a payload "
                              "(with payload_bits > 0 a pair's colour depends on the account).")
        ctx_ids, toks = np.asarray(contexts), as_token_array(np.asarray(tokens).reshape(-1))
        if ctx_ids.ndim != 2 or ctx_ids.shape != (toks.size, width):
            raise InputError(
                f"contexts must have shape (n, context_width={width}) with n = len(tokens) = "
                f"{toks.size}. Got {ctx_ids.shape}."
            )
        if toks.size == 0:
            return np.zeros(0, dtype=np.uint64)
        key = self.keyring.primary
        return pair_prf(key.sip(purpose), generation_contexts(key, ctx_ids.astype(np.int64), width), toks)

    def codec(self, key: SecretKey) -> PayloadCodec:
        """The payload codec for ``key`` (payload mode only)."""
        codec = self._codecs.get(key.key_id)
        if codec is None:
            c = self.config
            codec = PayloadCodec.for_key(key, c.payload_bits, c.checksum_bits, c.chunk_bits, c.anchor_chunks)
            self._codecs[key.key_id] = codec
        return codec

    # -- generation helpers -------------------------------------------------------------
    def _check_batch(
        self, scores: np.ndarray, payloads: Sequence[int | None]
    ) -> tuple[np.ndarray, list[int | None]]:
        arr = np.asarray(scores)
        if arr.ndim != 2 or arr.dtype.kind != "f":
            raise InputError(
                f"scores must be a 2-D float array (batch, vocab). Got shape {arr.shape}, dtype {arr.dtype}."
            )
        plist = list(payloads)
        if len(plist) != arr.shape[0]:
            raise InputError(f"Expected one payload per row ({arr.shape[0]}). Got {len(plist)}.")
        if not self.payload_mode and any(p is not None for p in plist):
            raise ConfigError(
                f"This {type(self).__name__} has payload_bits=0 and cannot embed account ids; "
                "build it with payload_bits=32 (or pass payload None)."
            )
        return arr, plist

    def _candidates(self, scores: np.ndarray, top_k: int) -> np.ndarray:
        batch, vocab = scores.shape
        if top_k and top_k < vocab:
            return np.argpartition(scores, vocab - top_k, axis=1)[:, vocab - top_k :]
        return np.broadcast_to(np.arange(vocab), (batch, vocab))

    # -- tracing --------------------------------------------------------------------------
    def trace(
        self,
        token_ids: Sequence[int] | np.ndarray,
        candidates: Sequence[int | str],
        *,
        alpha: float = 1e-6,
        dedup: bool = True,
    ) -> TraceResult:
        """Which candidate account (ids or account names) the text carries, if any.

        Each key of the ring gives its evidence (:meth:`_trace_key`: the scheme's exact
        per-candidate test and a sign test against the runner-up); the best key's p-value is
        Bonferroni-corrected over candidates × keys. ``separated`` says whether the best
        candidate beats the runner-up at ``alpha``.

        Raises:
            ConfigError: the scheme has no payload (``payload_bits=0``), or bad ``alpha``.
            InputError: bad token ids or candidates.
        """
        from distillguard.watermark._tuples import as_token_array

        if not self.payload_mode:
            raise ConfigError(f"trace() needs a payload-mode {type(self).__name__} (payload_bits ≥ 32).")
        check_real("trace", "alpha", alpha, 0.0, 1.0)
        ids = as_token_array(token_ids)
        n_tests = len(candidates) * len(self.keyring)
        best: TraceResult | None = None
        for key in self.keyring:
            ev = self._trace_key(key, ids, candidates, dedup)
            enough = ev.n_scored >= self.config.min_scored
            res = trace_result(key.key_id, candidates, ev, n_tests, alpha, enough)
            if best is None or res.log10_p_value < best.log10_p_value:
                best = res
        if best is None:  # pragma: no cover - a KeyRing is never empty
            raise ConfigError("No keys to trace with.")
        return best

    @abc.abstractmethod
    def _trace_key(
        self, key: SecretKey, ids: np.ndarray, candidates: Sequence[int | str], dedup: bool
    ) -> TraceEvidence:
        """One key's uncorrected tracing evidence for :meth:`trace`."""

    # -- detection ------------------------------------------------------------------------
    def detect(
        self,
        token_ids: Sequence[int] | np.ndarray,
        *,
        alpha: float = 1e-6,
        dedup: bool = True,
        decode_payload: bool = True,
        localize: bool = False,
    ) -> Detection:
        """Test ``token_ids`` under every key of the ring; see :class:`Detection`.

        Raises:
            ConfigError: ``alpha`` outside (0, 1).
            InputError: the ids are not a 1-D sequence of non-negative integers.
        """
        from distillguard.watermark._tuples import as_token_array

        check_real("detect", "alpha", alpha, 0.0, 1.0)
        ids = as_token_array(token_ids)
        results = [
            self._detect_key(
                k, ids, alpha=alpha, dedup=dedup, decode_payload=decode_payload, localize=localize
            )
            for k in self.keyring
        ]
        if len(results) == 1:
            return results[0]
        best = min(results, key=lambda d: d.log10_p_value)
        log_p = stats.sidak_min(best.log10_p_value * stats.LN10, len(results))
        watermarked = best.enough_tokens and stats.log_to_p(log_p) <= alpha
        payload = best.payload
        if payload is not None and not watermarked:
            payload = dataclasses.replace(payload, value=None)
        details = dict(best.details)
        details.update(
            correction=f"sidak over {len(results)} keys",
            per_key_log10_p_value={d.key_id: d.log10_p_value for d in results},
        )
        return dataclasses.replace(
            best,
            p_value=stats.log_to_p(log_p),
            log10_p_value=log_p / stats.LN10,
            watermarked=watermarked,
            payload=payload,
            details=details,
        )

    @abc.abstractmethod
    def _detect_key(
        self,
        key: SecretKey,
        ids: np.ndarray,
        *,
        alpha: float,
        dedup: bool,
        decode_payload: bool,
        localize: bool,
    ) -> Detection:
        """Test validated ids under one key."""

    def _result(
        self,
        key: SecretKey,
        n_tokens: int,
        n_scored: int,
        score: float,
        log_p: float,
        alpha: float,
        payload: PayloadEstimate | None = None,
        spans: tuple[Span, ...] = (),
        details: dict[str, Any] | None = None,
    ) -> Detection:
        enough = n_scored >= self.config.min_scored
        if not enough:
            log_p, payload, spans = 0.0, None, ()
        p = stats.log_to_p(log_p)
        return Detection(
            scheme=self.name,
            key_id=key.key_id,
            n_tokens=n_tokens,
            n_scored=n_scored,
            score=float(score),
            p_value=p,
            log10_p_value=log_p / stats.LN10,
            alpha=alpha,
            watermarked=bool(enough and p <= alpha and log_p <= math.log(alpha)),
            enough_tokens=enough,
            payload=payload,
            spans=spans,
            details=details or {},
        )
