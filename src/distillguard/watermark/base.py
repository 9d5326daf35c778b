"""The contract every watermark scheme implements (pure numpy: no torch, no I/O).

A scheme is registered once in :data:`schemes` and built from a frozen config and a secret key.
It has two halves:

- **Generation** — :meth:`WatermarkScheme.process`: given the token ids so far for a batch of
  rows, the next-token scores for each row (after temperature, and after top-p unless the scheme
  sets ``before_top_p``; float32 logits), and
  each row's payload (the account id to embed, or ``None`` for "watermark without payload"),
  return the modified scores. Green-list schemes add ``delta`` to green tokens; sampling schemes
  return scores that put all mass on the chosen token. Framework adapters
  (``watermark/hf.py`` for transformers, a vLLM wrapper) only convert tensors to numpy and back.
- **Detection** — :meth:`WatermarkScheme.detect`: score a sequence of token ids and return a
  typed :class:`Detection` with an exact p-value.

Repeated (context, token) tuples are scored once by default (``dedup=True``): without it, text
that repeats itself (or a clean model answering repeated prompts) looks watermarked.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from distillguard.registry import Registry

__all__ = [
    "Detection",
    "PayloadEstimate",
    "Span",
    "WatermarkScheme",
    "schemes",
]


@dataclass(frozen=True)
class PayloadEstimate:
    """The account id decoded from a text, with how sure we are.

    ``value`` is None when the text does not carry enough evidence to name a payload (or the
    checksum failed): distillguard never guesses an account.
    """

    value: int | None
    p_value: float          # chance that an unrelated text decodes a payload this confidently
    bits_decided: int       # payload bits with a decisive vote
    bits_total: int
    checksum_ok: bool


@dataclass(frozen=True)
class Span:
    """A watermarked stretch of a longer text, in token (and, where known, character) offsets."""

    start_token: int
    end_token: int
    p_value: float            # corrected for the number of windows tried (see ``correction``)
    start_char: int | None = None
    end_char: int | None = None


@dataclass(frozen=True)
class Detection:
    """The result of testing one text for one key.

    ``p_value`` is exact under the null "this text was written without our key" (binomial tail
    for green lists, Gamma tail for the sampling scheme); ``log10_p_value`` keeps it when the
    float would underflow. ``enough_tokens`` is False when fewer than the scheme's minimum were
    scored: the p-value is then 1.0 and the verdict False, honestly.
    """

    scheme: str
    key_id: str
    n_tokens: int                  # tokens in the input
    n_scored: int                  # tuples scored after dedup / context warm-up
    score: float                   # green count, or the summed Exp(1) score
    p_value: float
    log10_p_value: float
    alpha: float
    watermarked: bool              # p_value <= alpha
    enough_tokens: bool
    payload: PayloadEstimate | None = None
    spans: tuple[Span, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the CLI's ``--json`` and the gateway use it)."""
        from dataclasses import asdict

        return asdict(self)


class WatermarkScheme(abc.ABC):
    """A keyed watermark: bias generation, and test text for the bias with an exact p-value."""

    name: ClassVar[str]
    # Where the scheme sits in the sampling chain. A green-list bias must come *before* top-p
    # truncation, so it can lift a green token into the nucleus (measured on SmolLM2: median
    # trace log10 p over 150-token answers went from -5.3 to -9.0); a sampling scheme must come
    # *after* it, so it samples exactly the truncated distribution.
    before_top_p: ClassVar[bool] = False

    @abc.abstractmethod
    def process(
        self,
        input_ids: np.ndarray,
        scores: np.ndarray,
        payloads: Sequence[int | None],
    ) -> np.ndarray:
        """Return watermarked next-token scores for a batch.

        Args:
            input_ids: int64 array (batch, seq_len), the tokens so far (prompt included).
            scores: float32 array (batch, vocab), next-token logits after temperature (and
                top-p, unless ``before_top_p``).
            payloads: one entry per row: the account id to embed, or None.
        """

    @abc.abstractmethod
    def detect(
        self,
        token_ids: Sequence[int] | np.ndarray,
        *,
        alpha: float = 1e-6,
        dedup: bool = True,
        decode_payload: bool = True,
        localize: bool = False,
    ) -> Detection:
        """Test one sequence of token ids; see :class:`Detection`."""


    @abc.abstractmethod
    def trace(
        self,
        token_ids: Sequence[int] | np.ndarray,
        candidates: Sequence[int | str],
        *,
        alpha: float = 1e-6,
        dedup: bool = True,
    ) -> Any:
        """Which of ``candidates`` (account ids or names) the text was generated for: an exact
        per-candidate test, corrected for the candidates tried; returns a
        :class:`~distillguard.watermark.payload.TraceResult`. Needs a payload-mode config."""


schemes: Registry[type[WatermarkScheme]] = Registry(
    "watermark scheme", entry_point_group="distillguard.watermark_schemes"
)
