"""A synthetic "language model" for testing and benchmarking schemes without a real model.

Each step draws fresh logits N(0, scale²) over the vocabulary (with scale 2.5 over 512 tokens
the per-step entropy is about 3 nats, in the range of a chat model's sampled steps), passes them
through ``scheme.process`` and samples with the caller's seeded generator. Null text for
false-positive checks is simply uniform random ids: the keyed PRF makes greenness independent of
the ids, so any key-independent text is a valid null sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.watermark.base import WatermarkScheme

__all__ = ["synthetic_generate"]


def synthetic_generate(
    scheme: WatermarkScheme,
    rng: np.random.Generator,
    *,
    n_tokens: int = 200,
    vocab: int = 512,
    batch: int = 4,
    payloads: Sequence[int | None] | None = None,
    scale: float = 2.5,
    prompt_len: int = 4,
) -> np.ndarray:
    """Return an int64 ``(batch, n_tokens)`` array of watermarked tokens (prompt excluded)."""
    ids = rng.integers(0, vocab, (batch, prompt_len))
    rows = list(payloads) if payloads is not None else [None] * batch
    out = np.empty((batch, n_tokens), dtype=np.int64)
    for step in range(n_tokens):
        logits = (rng.standard_normal((batch, vocab)) * scale).astype(np.float32)
        scored = scheme.process(ids[:, -8:], logits, rows).astype(np.float64)
        scored -= scored.max(axis=1, keepdims=True)
        p = np.exp(scored)
        p /= p.sum(axis=1, keepdims=True)
        nxt = np.minimum((p.cumsum(axis=1) < rng.random((batch, 1))).sum(axis=1), vocab - 1)
        out[:, step] = nxt
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    return out
