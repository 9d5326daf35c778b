"""Gather the (context, token) tuples of many answers, de-duplicated *across* answers.

A radioactivity audit scores a suspect's answers to hundreds of prompts. A clean model asked the
same (or similar) prompts repeats itself: the same tuple scored twice is not new evidence, and
scoring it twice breaks the independence the exact p-value relies on. So tuples are hashed per
answer (contexts never span two answers) and then kept only at their first occurrence over the
whole collection, in answer order; each kept tuple remembers the answer that contributed it, which
gives the p-value as queries accumulate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.watermark._tuples import ScoredTuples, as_token_array
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.gumbel import Gumbel
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.kgw import KGW
from distillguard.watermark.prf import context_hashes, pair_prf

__all__ = ["ContextFilter", "TupleSet", "collect_tuples", "primary_purpose"]


def primary_purpose(scheme: WatermarkScheme) -> str:
    """The PRF purpose whose values a scheme's detector scores (the one ``ScoredTuples`` holds).

    Raises:
        ConfigError: the scheme is not one this module knows how to audit.
    """
    if isinstance(scheme, (KGW, Gumbel)):
        return scheme.scored_purpose
    raise ConfigError(
        f"Provenance audits support the 'kgw' and 'gumbel' schemes. Got {type(scheme).__name__} instead."
    )


@dataclass(frozen=True)
class ContextFilter:
    """The keyed context hashes that appeared in our served outputs, under one key.

    Build it from served token ids with :meth:`from_served`, or from hashes a log pipeline stored
    (``ContextFilter(key_id, np.unique(hashes))``). It never holds key material.
    """

    key_id: str
    context_width: int
    hashes: np.ndarray  # sorted unique uint64

    def __post_init__(self) -> None:
        h = np.asarray(self.hashes)
        if h.ndim != 1 or h.dtype != np.uint64:
            raise InputError(f"ContextFilter hashes must be a 1-D uint64 array. Got {h.dtype} {h.shape}.")
        if h.size > 1 and not bool(np.all(h[1:] > h[:-1])):
            raise InputError("ContextFilter hashes must be sorted and unique (use np.unique).")

    @classmethod
    def from_served(
        cls, key: SecretKey, context_width: int, served: Iterable[Sequence[int] | np.ndarray]
    ) -> ContextFilter:
        """Hash every context window of the served token sequences under ``key``."""
        parts = [np.zeros(0, dtype=np.uint64)]
        for seq in served:
            ids = as_token_array(seq)
            if ids.size > context_width:
                # the last window is the context of a token never served; it is not a context
                parts.append(context_hashes(key.sip("context"), ids[:-1], context_width))
        return cls(key.key_id, context_width, np.unique(np.concatenate(parts)))

    def contains(self, ctx: np.ndarray) -> np.ndarray:
        """Boolean mask: which of ``ctx`` are served contexts."""
        if self.hashes.size == 0:
            return np.zeros(ctx.shape, dtype=bool)
        idx = np.searchsorted(self.hashes, ctx)
        idx = np.minimum(idx, self.hashes.size - 1)
        return np.asarray(self.hashes[idx] == ctx)

    @property
    def size(self) -> int:
        """Number of distinct served contexts."""
        return int(self.hashes.size)


@dataclass(frozen=True)
class TupleSet:
    """Scored tuples of a whole answer collection under one key, in first-occurrence order."""

    tuples: ScoredTuples  # positions = global tuple index
    answer: np.ndarray  # int64: index of the answer that contributed each tuple
    n_answers: int
    n_tokens: int  # tokens in all answers
    n_raw: int  # tuples before dedup / filter
    n_after_dedup: int


def collect_tuples(
    scheme: WatermarkScheme,
    key: SecretKey,
    answers: Sequence[Sequence[int] | np.ndarray],
    *,
    dedup: bool = True,
    context_filter: ContextFilter | None = None,
) -> TupleSet:
    """Score every answer under ``key`` and de-duplicate tuples across the whole collection.

    Raises:
        InputError: an answer is not a 1-D sequence of token ids, or the filter was built for a
            different key or context width.
    """
    width = int(scheme.config.context_width)  # type: ignore[attr-defined]
    purpose = primary_purpose(scheme)
    if context_filter is not None and (
        context_filter.key_id != key.key_id or context_filter.context_width != width
    ):
        raise InputError(
            f"The context filter was built for key {context_filter.key_id} and width "
            f"{context_filter.context_width}; this audit uses key {key.key_id} and width {width}."
        )
    arrays = [as_token_array(a) for a in answers]
    lengths = np.array([x.size for x in arrays], dtype=np.int64)
    n_tokens = int(lengths.sum())
    # One vectorised pass over the concatenation; windows that straddle two answers are dropped.
    allids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
    answer_of = np.repeat(np.arange(len(arrays), dtype=np.int64), lengths)
    offset = np.arange(n_tokens, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    scored = np.flatnonzero(offset >= width)
    if scored.size:
        all_ctx = context_hashes(key.sip("context"), allids[:-1], width)  # entry j: context of token j+w
        c = all_ctx[scored - width]
        k = allids[scored]
        v = pair_prf(key.sip(purpose), c, k)
        a_idx = answer_of[scored]
    else:
        c, v = np.zeros(0, np.uint64), np.zeros(0, np.uint64)
        k, a_idx = np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_raw = int(v.size)
    if dedup and v.size:
        # the pair PRF value identifies (context, token): collisions ~ n²/2^65
        _, first = np.unique(v, return_index=True)
        first.sort()
        c, k, v, a_idx = c[first], k[first], v[first], a_idx[first]
    n_dedup = int(v.size)
    if context_filter is not None:
        keep = context_filter.contains(c)
        c, k, v, a_idx = c[keep], k[keep], v[keep], a_idx[keep]
    positions = np.arange(v.size, dtype=np.int64)
    return TupleSet(
        tuples=ScoredTuples(n_tokens, positions, c, k, v),
        answer=a_idx,
        n_answers=len(answers),
        n_tokens=n_tokens,
        n_raw=n_raw,
        n_after_dedup=n_dedup,
    )


def check_alpha(alpha: float) -> None:
    """Raise ConfigError unless alpha is a float in (0, 1)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise ConfigError(f"The 'alpha' parameter must be a float in (0, 1). Got {alpha!r} instead.")
