"""Exact null distribution of the payload statistic T = Σ_groups max_color count.

With a payload, KGW colors every scored tuple with one of ``r`` colors and assigns it to a
chunk group; under the null each tuple's color is uniform and independent, so a group of
``n`` tuples has color counts ~ Multinomial(n; 1/r, …, 1/r). The "watermarked at all" test
must not depend on the (unknown) payload, so it uses the largest count per group, summed.

- :func:`max_count_log_pmf` — the exact pmf of M = max count for one group, from
  P(M = m) = n! r^-n / m! · Σ_c Σ_{j} Π_k 1/j_k!, splitting by the first color c that reaches
  m (colors before it ≤ m−1, after it ≤ m). Every term is positive (no inclusion–exclusion,
  so no cancellation), and the inner sums are evaluated with Poisson weights tilted to the
  remaining mass, which keeps them in floating-point range; the result is a log-pmf.
- :func:`sum_log_sf` — ln P(Σ M_g ≥ t) for independent groups, by convolving the group pmfs
  after *exponential tilting* (each pmf multiplied by e^{θm} with θ chosen so the tilted mean
  is t). The terms that matter then sit near the peak of the tilted distribution, so the tail
  stays accurate (relative error ~1e-10) at any depth — 1e-30 or 1e-3000 alike — and the
  result is returned as a natural log. Group pmf entries below ~1e-300 of the tilted peak are
  dropped; they cannot move the result by more than that relative amount.

Cost: one group of size n costs O(r · n³) once (results are cached by (n, r)); that is why
the schemes cap group sizes with blocks (see ``KGWConfig.payload_block``).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import gammaln, logsumexp

from distillguard.errors import ConfigError

__all__ = ["binomial_log_pmf", "max_count_log_pmf", "sum_log_sf"]


def _truncated_power(poly: np.ndarray, k: int, degree: int) -> list[np.ndarray]:
    """[poly^0, poly^1, …, poly^k], each truncated to ``degree``."""
    out = [np.ones(1)]
    for _ in range(k):
        out.append(np.convolve(out[-1], poly)[: degree + 1])
    return out


def _coef(a: np.ndarray, b: np.ndarray, degree: int) -> float:
    """Coefficient of x^degree in a·b: Σ_i a[i]·b[degree − i]."""
    lo = max(0, degree - (b.size - 1))
    hi = min(degree, a.size - 1)
    if hi < lo:
        return 0.0
    return float(np.dot(a[lo : hi + 1], b[degree - hi : degree - lo + 1][::-1]))


@lru_cache(maxsize=8192)
def _max_count_log_pmf_cached(n: int, r: int) -> tuple[int, tuple[float, ...]]:
    if n == 0:
        return 0, (0.0,)
    if r == 1:
        return n, (0.0,)
    m_lo = -(-n // r)
    log_base = math.lgamma(n + 1) - n * math.log(r)
    out = []
    for m in range(m_lo, n + 1):
        rem = n - m
        if rem == 0:
            # Only one color holds everything: the first color reaching m must be c, the others 0.
            out.append(log_base - math.lgamma(m + 1) + math.log(r))
            continue
        lam = rem / (r - 1)
        j = np.arange(min(m, rem) + 1, dtype=np.float64)
        w = np.exp(j * math.log(lam) - lam - gammaln(j + 1.0))
        a = w[: min(m - 1, rem) + 1]
        b = w
        a_pow = _truncated_power(a, r - 1, rem)
        b_pow = _truncated_power(b, r - 1, rem)
        total = 0.0
        for c in range(1, r + 1):
            total += _coef(a_pow[c - 1], b_pow[r - c], rem)
        if total <= 0.0:
            out.append(-math.inf)
            continue
        # Σ Π_k w_{j_k} = e^{rem·ln λ − rem} Σ Π_k 1/j_k! over the r−1 other colors.
        out.append(log_base - math.lgamma(m + 1) + math.log(total) - (rem * math.log(lam) - rem))
    return m_lo, tuple(out)


def max_count_log_pmf(n: int, r: int) -> tuple[int, np.ndarray]:
    """Exact log-pmf of the largest color count of Multinomial(n; 1/r, …, 1/r).

    Returns:
        ``(m_lo, log_pmf)`` where ``log_pmf[i]`` = ln P(M = m_lo + i), for m in
        ``[ceil(n/r), n]``.

    Raises:
        ConfigError: ``n < 0`` or ``r < 1``.

    >>> lo, lp = max_count_log_pmf(2, 2)      # counts (1,1) w.p. 1/2, (2,0)/(0,2) w.p. 1/2
    >>> lo, [round(float(np.exp(x)), 6) for x in lp]
    (1, [0.5, 0.5])
    """
    if n < 0 or r < 1:
        raise ConfigError(f"max_count_log_pmf needs n ≥ 0 and r ≥ 1. Got n={n!r}, r={r!r}.")
    lo, values = _max_count_log_pmf_cached(int(n), int(r))
    return lo, np.array(values)


def binomial_log_pmf(n: int, p: float) -> tuple[int, np.ndarray]:
    """``(0, log_pmf)`` of Binomial(n, p), as a group for :func:`sum_log_sf` (a count whose
    colour is known in advance, e.g. an anchor slot's)."""
    if n < 0 or not 0.0 < p < 1.0:
        raise ConfigError(f"binomial_log_pmf needs n ≥ 0 and p in (0, 1). Got n={n!r}, p={p!r}.")
    k = np.arange(n + 1)
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return 0, log_choose + k * math.log(p) + (n - k) * math.log1p(-p)


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size * b.size <= 250_000:
        return np.convolve(a, b)
    # FFT noise is absolute (~1e-16 of the peak); after tilting the terms we need are near
    # the peak, so it is negligible; negative noise is clipped.
    return np.clip(fftconvolve(a, b), 0.0, None)


def sum_log_sf(groups: list[tuple[int, np.ndarray]], t: int) -> float:
    """ln P(Σ_g M_g ≥ t) for independent groups given as ``(lo, log_pmf)`` pairs.

    Exact up to floating-point rounding at any depth (see the module docstring).
    """
    groups = [(lo, lp) for lo, lp in groups if lp.size]
    if not groups:
        return 0.0 if t <= 0 else -math.inf
    total_lo = sum(lo for lo, _ in groups)
    total_hi = sum(lo + lp.size - 1 for lo, lp in groups)
    if t <= total_lo:
        return 0.0
    if t > total_hi:
        return -math.inf
    width = max(lp.size for _, lp in groups)
    mat = np.full((len(groups), width), -np.inf)
    offs = np.zeros((len(groups), width))
    for g, (_lo, lp) in enumerate(groups):
        mat[g, : lp.size] = lp
    offs[:] = np.arange(width)

    def tilted_mean(theta: float) -> float:
        z = mat + theta * offs
        lz = logsumexp(z, axis=1, keepdims=True)
        return float(np.sum(np.exp(z - lz) * offs)) + total_lo

    theta = 0.0
    if tilted_mean(0.0) < t:
        target = min(float(t), total_hi - 0.5)
        lo_t, hi_t = 0.0, 1.0
        while tilted_mean(hi_t) < target and hi_t < 200.0:
            lo_t, hi_t = hi_t, hi_t * 2.0
        for _ in range(60):
            mid = 0.5 * (lo_t + hi_t)
            if tilted_mean(mid) < target:
                lo_t = mid
            else:
                hi_t = mid
        theta = hi_t
    z = mat + theta * offs
    log_z = logsumexp(z, axis=1)
    pmfs = [np.exp(z[g, : lp.size] - log_z[g]) for g, (_lo, lp) in enumerate(groups)]
    # Pairwise (tree) convolution keeps the FFT sizes balanced.
    while len(pmfs) > 1:
        nxt = [_convolve(pmfs[i], pmfs[i + 1]) for i in range(0, len(pmfs) - 1, 2)]
        if len(pmfs) % 2:
            nxt.append(pmfs[-1])
        pmfs = nxt
    q = pmfs[0]
    s_idx = t - total_lo
    tail = q[s_idx:]
    decay = np.exp(-theta * np.arange(tail.size))
    acc = float(np.dot(tail, decay))
    if acc <= 0.0:
        return -math.inf
    # P(T ≥ t) = Π Z_g(θ) · Σ_{s≥t} q(s) e^{−θ s}; offsets are relative to total_lo.
    return min(0.0, float(np.sum(log_z)) - theta * s_idx + math.log(acc))
