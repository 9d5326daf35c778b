"""Exact tail probabilities in log space and multiple-testing corrections (pure numpy/scipy).

Every p-value distillguard reports is computed here, without normal approximations, in log
space so that it stays exact far below double precision's ~1e-308 floor (a p-value is reported
as ``log10_p`` whenever the float would underflow).

- :func:`binomial_log_sf` — log P(X ≥ k), X ~ Binomial(n, p): the green-list test.
- :func:`gamma_log_sf` — log P(S ≥ s), S ~ Gamma(n, 1) for integer n: the exponential-minimum
  (Gumbel) test, where each scored token contributes an Exp(1) score under the null.
- :func:`bonferroni`, :func:`holm`, :func:`benjamini_hochberg`, :func:`sidak_min` — corrections.
- :func:`fisher_combine` — Fisher's method for independent p-values (exact chi-square tail).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln, logsumexp

from distillguard.errors import ConfigError

__all__ = [
    "benjamini_hochberg",
    "binomial_log_sf",
    "bonferroni",
    "fisher_combine",
    "gamma_log_sf",
    "holm",
    "holm_log",
    "log_to_p",
    "sidak_min",
    "spent_log_p",
]

LN10 = math.log(10.0)


def _check_probability(name: str, value: float, *, open_interval: bool = True) -> None:
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not (isinstance(value, (int, float)) and ok):
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise ConfigError(f"The {name!r} parameter must be a float in {bounds}. Got {value!r} instead.")


def binomial_log_sf(k: int, n: int, p: float) -> float:
    """Return ln P(X ≥ k) for X ~ Binomial(n, p), exactly, in log space.

    The sum of the upper tail's probability masses is taken with log-sum-exp; terms past the
    mode fall geometrically, so the sum stops once they cannot change the result in double
    precision. Exact for any n, k; no normal approximation.

    Raises:
        ConfigError: ``n < 0``, ``k`` outside ``[0, n+1]`` after clipping rules, or ``p``
            outside (0, 1).

    >>> round(math.exp(binomial_log_sf(3, 4, 0.5)), 6)
    0.3125
    """
    _check_probability("p", p)
    if n < 0:
        raise ConfigError(f"The 'n' parameter must be a non-negative integer. Got {n!r} instead.")
    if k <= 0:
        return 0.0
    if k > n:
        return -math.inf
    j = np.arange(k, n + 1, dtype=np.float64)
    log_pmf = (
        gammaln(n + 1.0) - gammaln(j + 1.0) - gammaln(n - j + 1.0)
        + j * math.log(p) + (n - j) * math.log1p(-p)
    )
    return float(min(0.0, logsumexp(log_pmf)))


def gamma_log_sf(s: float, n: int) -> float:
    """Return ln P(S ≥ s) for S ~ Gamma(n, 1) with integer shape n, exactly, in log space.

    For integer shape, P(S ≥ s) = P(Poisson(s) ≤ n − 1) = Σ_{k<n} e^{−s} s^k / k!, summed with
    log-sum-exp: exact at any depth of the tail.

    Raises:
        ConfigError: ``n < 1`` or ``s`` is not finite.

    >>> round(math.exp(gamma_log_sf(1.0, 1)), 6)   # Exp(1): P(S ≥ 1) = e^-1
    0.367879
    """
    if n < 1:
        raise ConfigError(f"The 'n' parameter must be an integer ≥ 1. Got {n!r} instead.")
    if not math.isfinite(s):
        raise ConfigError(f"The 's' parameter must be a finite float. Got {s!r} instead.")
    if s <= 0.0:
        return 0.0
    k = np.arange(n, dtype=np.float64)
    terms = k * math.log(s) - s - gammaln(k + 1.0)
    return float(min(0.0, logsumexp(terms)))


def log_to_p(log_p: float) -> float:
    """Convert a natural-log p-value to a float (0.0 only where it truly underflows)."""
    return math.exp(log_p) if log_p > -745.0 else 0.0


def bonferroni(log_p: float, m: int) -> float:
    """Bonferroni-correct a natural-log p-value for ``m`` tests: ln min(1, m·p)."""
    if m < 1:
        raise ConfigError(f"The 'm' parameter must be an integer ≥ 1. Got {m!r} instead.")
    return min(0.0, log_p + math.log(m))


def spent_log_p(log_p: float, look: int) -> float:
    """ln p-value of the ``look``-th look (1-based) of a sequential test that spends
    α·6/(π²·look²) at each look: ln min(1, p·π²·look²/6).

    The spends sum to α over every look there could ever be, so "stop at the first look whose
    spent p-value is ≤ α" has error ≤ α whatever the looks' dependence and however many are
    taken — an audit that is extended after its result was seen stays valid, which the p-value
    at a count fixed in advance is not.
    """
    if look < 1:
        raise ConfigError(f"The 'look' parameter must be an integer ≥ 1. Got {look!r} instead.")
    return min(0.0, log_p + math.log(math.pi**2 * look**2 / 6.0))


def sidak_min(log_p_min: float, m: int) -> float:
    """Return ln P(min of m independent uniform p-values ≤ p_min) = ln(1 − (1 − p)^m).

    Exact for independent tests; used when the same text is tested under m keys.
    """
    if m < 1:
        raise ConfigError(f"The 'm' parameter must be an integer ≥ 1. Got {m!r} instead.")
    p = math.exp(log_p_min)
    if p < 1e-12:  # 1-(1-p)^m ≈ m·p with relative error < m·p; stay in log space
        return min(0.0, log_p_min + math.log(m))
    return math.log(-math.expm1(m * math.log1p(-p)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (family-wise error control), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def holm_log(log_p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values in natural-log space, in input order (p-values far below the
    float range stay exact: nothing is exponentiated)."""
    logs = np.asarray(log_p_values, dtype=float)
    m = logs.size
    order = np.argsort(logs, kind="stable")
    adjusted = np.minimum(0.0, np.maximum.accumulate(logs[order] + np.log(m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false-discovery-rate control), in input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


def fisher_combine(log_p_values: Sequence[float]) -> float:
    """Combine independent natural-log p-values with Fisher's method; return the ln p-value.

    −2 Σ ln p_i ~ χ²(2k), i.e. −Σ ln p_i ~ Gamma(k, 1): the exact tail is :func:`gamma_log_sf`.
    Only valid for *independent* evidence; callers must not feed it dependent tests.
    """
    values = [float(v) for v in log_p_values]
    if not values:
        raise ConfigError("fisher_combine needs at least one p-value. Got none.")
    if any(v > 0 for v in values):
        raise ConfigError("fisher_combine expects natural-log p-values ≤ 0.")
    return gamma_log_sf(-sum(values), len(values))
