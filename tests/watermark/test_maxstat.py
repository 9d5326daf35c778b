from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from distillguard import stats
from distillguard.errors import ConfigError
from distillguard.watermark.maxstat import max_count_log_pmf, sum_log_sf


def brute_force_pmf(n: int, r: int) -> dict[int, float]:
    out: dict[int, float] = {}
    for colors in itertools.product(range(r), repeat=n):
        m = int(np.bincount(colors, minlength=r).max())
        out[m] = out.get(m, 0.0) + r**-n
    return out


@pytest.mark.parametrize(("n", "r"), [(1, 2), (4, 2), (7, 2), (5, 3), (8, 3), (6, 4), (5, 8)])
def test_max_pmf_matches_enumeration(n: int, r: int) -> None:
    lo, lp = max_count_log_pmf(n, r)
    exact = brute_force_pmf(n, r)
    got = {lo + i: math.exp(v) for i, v in enumerate(lp)}
    for m in set(got) | set(exact):
        assert got.get(m, 0.0) == pytest.approx(exact.get(m, 0.0), rel=1e-12, abs=1e-300)


def test_max_pmf_extreme_tail_in_log_space() -> None:
    # All n tuples the same color: probability r^(1-n), far below double precision.
    lo, lp = max_count_log_pmf(600, 4)
    assert lp[-1] == pytest.approx((1 - 600) * math.log(4), rel=1e-12)
    # Above n/2 only one color can reach m, so P(M = m) = r · Binomial pmf.
    m = 400
    binom = stats.binomial_log_sf(m, 600, 0.25)
    binom_next = stats.binomial_log_sf(m + 1, 600, 0.25)
    pmf_binom = math.log(4) + binom + math.log1p(-math.exp(binom_next - binom))
    assert lp[m - lo] == pytest.approx(pmf_binom, rel=1e-9)


def test_sum_tail_matches_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    sizes = [9, 12, 15, 10, 11]
    r = 4
    groups = [max_count_log_pmf(s, r) for s in sizes]
    sims = 200_000
    t_sim = np.zeros(sims, dtype=np.int64)
    for s in sizes:
        t_sim += rng.multinomial(s, [1 / r] * r, size=sims).max(axis=1)
    for t in (25, 28, 31, 34):
        exact = math.exp(sum_log_sf(groups, t))
        mc = float((t_sim >= t).mean())
        # 5-sigma binomial tolerance on the Monte Carlo estimate.
        assert abs(mc - exact) <= 5 * math.sqrt(exact * (1 - exact) / sims) + 1e-6, (t, exact, mc)


def test_sum_tail_matches_direct_convolution_and_edges() -> None:
    groups = [max_count_log_pmf(s, 2) for s in (3, 4, 5)]
    pmf = np.ones(1)
    lo_total = 0
    for lo, lp in groups:
        pmf = np.convolve(pmf, np.exp(lp))
        lo_total += lo
    for t in range(lo_total, lo_total + pmf.size):
        assert math.exp(sum_log_sf(groups, t)) == pytest.approx(pmf[t - lo_total :].sum(), rel=1e-10)
    assert sum_log_sf(groups, lo_total) == 0.0
    assert sum_log_sf(groups, 13) == -math.inf
    # Deep tail: every group entirely one color.
    assert sum_log_sf(groups, 12) == pytest.approx(sum(lp[-1] for _, lp in groups), rel=1e-10)


def test_sum_tail_is_monotone_and_deep() -> None:
    groups = [max_count_log_pmf(50, 4)] * 20
    values = [sum_log_sf(groups, t) for t in range(260, 1001, 20)]
    assert all(b < a for a, b in itertools.pairwise(values))
    assert values[-1] / math.log(10) == pytest.approx(20 * (1 - 50) * math.log10(4), rel=1e-9)


def test_binomial_group_matches_scipy_and_convolves_exactly() -> None:
    from scipy import stats as sps

    from distillguard.watermark.maxstat import binomial_log_pmf

    lo, lp = binomial_log_pmf(40, 0.25)
    assert lo == 0 and np.allclose(np.exp(lp), sps.binom.pmf(np.arange(41), 40, 0.25), rtol=1e-10, atol=0)
    # alone, the tail of the sum is the binomial tail; with a max-count group, the brute-force sum
    assert np.isclose(sum_log_sf([(lo, lp)], 17), np.log(sps.binom.sf(16, 40, 0.25)), rtol=1e-9)
    m_lo, m_lp = max_count_log_pmf(6, 4)
    pm = np.zeros(7)
    pm[m_lo:] = np.exp(m_lp)
    total = np.convolve(pm, np.exp(lp))
    assert np.isclose(sum_log_sf([(m_lo, m_lp), (lo, lp)], 20), np.log(total[20:].sum()), rtol=1e-9)
    with pytest.raises(ConfigError):
        binomial_log_pmf(5, 1.0)
