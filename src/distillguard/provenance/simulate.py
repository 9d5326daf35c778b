"""Tiny synthetic teachers and students for calibrating and benchmarking audits (pure numpy).

- :class:`MarkovTeacher` — a random order-1 "language model" (a fixed logits table, so the same
  prompt gives the same distribution: repeated prompts make repeated answers, which is what the
  dedup calibration needs). It can generate through any watermark scheme.
- :class:`CountStudent` — an n-gram student "distilled" by counting its teacher's outputs
  (add-``smoothing`` estimates, optionally mixed with clean data). It inherits the watermark's
  bias exactly where it saw the watermarked contexts, like a real student does.

Randomness is always passed in as a seeded :class:`numpy.random.Generator`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.errors import ConfigError
from distillguard.watermark.base import WatermarkScheme

__all__ = ["CountStudent", "MarkovTeacher"]


def _sample_rows(logits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    return np.minimum((p.cumsum(axis=1) < rng.random((p.shape[0], 1))).sum(axis=1), p.shape[1] - 1)


class MarkovTeacher:
    """An order-1 random language model over ``vocab`` tokens (logits N(0, scale²) per row)."""

    def __init__(self, vocab: int, rng: np.random.Generator, *, scale: float = 2.5) -> None:
        if not isinstance(vocab, int) or vocab < 2:
            raise ConfigError(
                f"The 'vocab' parameter of MarkovTeacher must be an int ≥ 2. Got {vocab!r} instead."
            )
        self.vocab = vocab
        self.table = (rng.standard_normal((vocab, vocab)) * scale).astype(np.float32)

    def generate(
        self,
        prompts: np.ndarray,
        n_tokens: int,
        rng: np.random.Generator,
        *,
        scheme: WatermarkScheme | None = None,
        payloads: Sequence[int | None] | None = None,
    ) -> np.ndarray:
        """Answers (batch, n_tokens) continuing each row of ``prompts`` (batch, prompt_len)."""
        ids = np.asarray(prompts, dtype=np.int64)
        rows = list(payloads) if payloads is not None else [None] * ids.shape[0]
        out = np.empty((ids.shape[0], n_tokens), dtype=np.int64)
        for step in range(n_tokens):
            logits = self.table[ids[:, -1]].copy()
            if scheme is not None:
                logits = scheme.process(ids[:, -8:], logits, rows)
            nxt = _sample_rows(logits, rng)
            out[:, step] = nxt
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
        return out


class CountStudent:
    """An n-gram model fitted by counting (context = previous ``order`` tokens)."""

    def __init__(self, vocab: int, *, order: int = 2, smoothing: float = 0.1) -> None:
        if not isinstance(order, int) or order < 1:
            raise ConfigError(
                f"The 'order' parameter of CountStudent must be an int ≥ 1. Got {order!r} instead."
            )
        self.vocab, self.order, self.smoothing = vocab, order, smoothing
        self.counts_: dict[tuple[int, ...], np.ndarray] = {}

    def fit(self, texts: Sequence[np.ndarray]) -> CountStudent:
        """Count every (context, next token) in ``texts``; returns self."""
        for t in texts:
            t = np.asarray(t, dtype=np.int64)
            for i in range(self.order, t.size):
                ctx = tuple(int(x) for x in t[i - self.order : i])
                row = self.counts_.get(ctx)
                if row is None:
                    row = self.counts_[ctx] = np.zeros(self.vocab)
                row[int(t[i])] += 1.0
        return self

    def generate(self, prompts: np.ndarray, n_tokens: int, rng: np.random.Generator) -> np.ndarray:
        """Sample answers (batch, n_tokens); unseen contexts fall back to uniform."""
        ids = [list(map(int, p)) for p in np.asarray(prompts, dtype=np.int64)]
        out = np.empty((len(ids), n_tokens), dtype=np.int64)
        for b, hist in enumerate(ids):
            for step in range(n_tokens):
                p = self.next_probs(hist)
                tok = min(int(np.searchsorted(np.cumsum(p), rng.random())), self.vocab - 1)
                out[b, step] = tok
                hist.append(tok)
        return out

    def next_probs(self, history: Sequence[int]) -> np.ndarray:
        """The student's next-token distribution after ``history``."""
        row = self.counts_.get(tuple(int(x) for x in history[-self.order :]))
        if row is None:
            return np.full(self.vocab, 1.0 / self.vocab)
        p = row + self.smoothing
        return np.asarray(p / p.sum())
