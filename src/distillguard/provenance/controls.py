"""Null controls: run the same audit with keys that were never used.

Under the null every audit p-value is uniform (or, for discrete tests, stochastically larger than
uniform). Re-running the procedure — same answers, same dedup, same filter recipe — under ``n``
fresh random keys gives ``n`` independent draws of the null p-value *for this very suspect*, so
the fraction below α must stay within a Binomial(n, α) bound. A control that fails says the audit
procedure (not the suspect) is broken, e.g. dedup was switched off for a model that repeats
itself. Keys come from the caller's seeded generator; they are thrown away afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import binom

from distillguard.errors import ConfigError
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.keys import SecretKey

__all__ = ["ControlsResult", "fpr_upper_bound", "null_controls"]


@dataclass(frozen=True)
class ControlsResult:
    """P-values of the audit under never-used keys, and whether they look uniform."""

    n_keys: int
    alphas: tuple[float, ...]
    fractions_below: tuple[float, ...]  # fraction of control p-values ≤ each alpha
    upper_bounds: tuple[float, ...]  # the largest fraction consistent with level alpha
    passed: bool
    min_log10_p_value: float
    log10_p_values: tuple[float, ...]
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def fpr_upper_bound(n: int, alpha: float, confidence: float = 0.999) -> float:
    """The largest fraction of ``n`` null trials that may fall below ``alpha`` at ``confidence``.

    It is the ``confidence`` quantile of Binomial(n, alpha) divided by n: a valid test exceeds it
    with probability at most 1 − confidence.

    >>> fpr_upper_bound(1000, 0.01)
    0.021
    """
    if n < 1:
        raise ConfigError(f"The 'n' parameter must be an int ≥ 1. Got {n!r} instead.")
    return float(binom.ppf(confidence, n, alpha)) / n


def null_controls(
    build: Callable[[SecretKey], WatermarkScheme],
    audit: Callable[[WatermarkScheme], float],
    rng: np.random.Generator,
    *,
    n_keys: int = 100,
    alphas: Sequence[float] = (0.01, 0.05),
    confidence: float = 0.999,
) -> ControlsResult:
    """Run ``audit`` (returning a log10 p-value) under ``n_keys`` fresh keys.

    Args:
        build: makes the scheme (same config as the real audit) for a given key.
        audit: the exact audit procedure, returning its log10 p-value.
        rng: seeded generator the control keys are drawn from.

    Raises:
        ConfigError: ``n_keys < 1`` or an alpha outside (0, 1).

    >>> from distillguard.watermark import KGW
    >>> from distillguard.provenance.radioactivity import radioactivity_test
    >>> answers = [list(range(50))]
    >>> res = null_controls(lambda k: KGW(key=k),
    ...                     lambda s: radioactivity_test(s, answers).log10_p_value,
    ...                     np.random.default_rng(0), n_keys=20)
    >>> res.n_keys
    20
    """
    if not isinstance(n_keys, int) or n_keys < 1:
        raise ConfigError(f"The 'n_keys' parameter must be an int ≥ 1. Got {n_keys!r} instead.")
    for a in alphas:
        if not 0.0 < a < 1.0:
            raise ConfigError(f"Every alpha must be a float in (0, 1). Got {a!r} instead.")
    logs = []
    for _ in range(n_keys):
        logs.append(float(audit(build(SecretKey(rng.bytes(32))))))
    arr = np.array(logs)
    fracs = tuple(float(np.mean(arr <= math.log10(a))) for a in alphas)
    bounds = tuple(fpr_upper_bound(n_keys, a, confidence) for a in alphas)
    return ControlsResult(
        n_keys=n_keys,
        alphas=tuple(float(a) for a in alphas),
        fractions_below=fracs,
        upper_bounds=bounds,
        passed=all(f <= b for f, b in zip(fracs, bounds, strict=True)),
        min_log10_p_value=float(arr.min()),
        log10_p_values=tuple(logs),
        confidence=confidence,
    )
