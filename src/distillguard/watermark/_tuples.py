"""Turn a token sequence into the scored (context, token) tuples every detector works on.

Token i (i ≥ w) is scored with the keyed hash of its w predecessors as context; the first w
tokens have no full context and are not scored. With ``dedup`` a (context, token) tuple is
scored only at its first occurrence — identified by the 64-bit keyed PRF value of the pair,
whose collisions between distinct pairs have probability ~n²/2^65 (1e-7 for 2M tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard.errors import InputError
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.prf import context_hashes, pair_prf, siphash24_words

__all__ = [
    "ScoredTuples",
    "as_token_array",
    "as_token_matrix",
    "generation_contexts",
    "score_tuples",
]

_MAX_TOKEN = (1 << 32) - 1


def as_token_array(token_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """Validate a 1-D sequence of token ids and return it as int64.

    Raises:
        InputError: not 1-D, not integers, negative, or ≥ 2^32.
    """
    arr = np.asarray(token_ids)
    if arr.ndim != 1:
        raise InputError(f"Token ids must be a 1-D sequence. Got an array of shape {arr.shape} instead.")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InputError(f"Token ids must be integers. Got dtype {arr.dtype} instead.")
    if int(arr.min()) < 0 or int(arr.max()) > _MAX_TOKEN:
        raise InputError(f"Token ids must lie in [0, 2^32). Got values in [{arr.min()}, {arr.max()}].")
    return arr.astype(np.int64, copy=False)


def as_token_matrix(input_ids: np.ndarray, batch: int) -> np.ndarray:
    """Validate generation-time ``input_ids`` of shape (batch, seq_len)."""
    arr = np.asarray(input_ids)
    if arr.ndim != 2 or arr.shape[0] != batch:
        raise InputError(
            f"input_ids must have shape (batch={batch}, seq_len). Got shape {arr.shape} instead."
        )
    if arr.size and (arr.dtype.kind not in "iu" or int(arr.min()) < 0):
        raise InputError("input_ids must hold non-negative integer token ids.")
    return arr.astype(np.int64, copy=False)


@dataclass(frozen=True)
class ScoredTuples:
    """The tuples a detector scores, in text order."""

    n_tokens: int
    positions: np.ndarray  # index in the text of each scored token
    ctx: np.ndarray  # uint64 keyed context hash
    tokens: np.ndarray  # int64 token id
    values: np.ndarray  # uint64 PRF(ctx, token) under the scheme's primary purpose key

    @property
    def n(self) -> int:
        """Number of scored tuples."""
        return int(self.positions.size)


def score_tuples(
    key: SecretKey,
    token_ids: np.ndarray,
    width: int,
    purpose: str,
    *,
    dedup: bool,
) -> ScoredTuples:
    """Context-hash, PRF and (optionally) de-duplicate a validated int64 token array."""
    n_tokens = int(token_ids.size)
    if n_tokens <= width:
        empty_u = np.zeros(0, dtype=np.uint64)
        return ScoredTuples(n_tokens, np.zeros(0, dtype=np.int64), empty_u, np.zeros(0, np.int64), empty_u)
    ctx = context_hashes(key.sip("context"), token_ids[:-1], width)
    tokens = token_ids[width:]
    values = pair_prf(key.sip(purpose), ctx, tokens)
    positions = np.arange(width, n_tokens, dtype=np.int64)
    if dedup:
        _, first = np.unique(values, return_index=True)
        if first.size < values.size:
            first.sort()
            positions, ctx, tokens, values = positions[first], ctx[first], tokens[first], values[first]
    return ScoredTuples(n_tokens, positions, ctx, tokens, values)


def generation_contexts(key: SecretKey, input_ids: np.ndarray, width: int) -> np.ndarray:
    """The keyed context hash of the last ``width`` tokens of each row (shape (batch,)).

    Matches :func:`score_tuples`: the context of the token generated next.
    """
    window = input_ids[:, -width:]
    return siphash24_words(key.sip("context"), [np.ascontiguousarray(window[:, j]) for j in range(width)])
