import math

import numpy as np
import pytest
from scipy import stats as sps

from distillguard import stats
from distillguard.errors import ConfigError


@pytest.mark.parametrize("n,p", [(10, 0.25), (200, 0.5), (1000, 0.25), (37, 0.1)])
def test_binomial_tail_matches_scipy_where_scipy_is_exact(n: int, p: float) -> None:
    for k in range(0, n + 2, max(1, n // 20)):
        expected = sps.binom.sf(k - 1, n, p)
        got = math.exp(stats.binomial_log_sf(k, n, p))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_binomial_tail_stays_exact_far_below_float_range() -> None:
    # P(X = n) = p^n exactly; the tail at k = n is that single term.
    n, p = 2000, 0.25
    assert stats.binomial_log_sf(n, n, p) == pytest.approx(n * math.log(p), rel=1e-12)
    # 1e-30 region checked against mpmath-free closed form via scipy's logsf where it is fine
    k = 120
    assert stats.binomial_log_sf(k, 200, 0.25) == pytest.approx(sps.binom.logsf(k - 1, 200, 0.25), rel=1e-9)


@pytest.mark.parametrize("n", [1, 2, 5, 50, 400])
def test_gamma_tail_matches_scipy(n: int) -> None:
    for s in np.linspace(0.1, 3 * n + 10, 15):
        assert math.exp(stats.gamma_log_sf(float(s), n)) == pytest.approx(
            sps.gamma.sf(s, n), rel=1e-9, abs=1e-300
        )


def test_gamma_tail_deep() -> None:
    # n = 1: exactly -s
    assert stats.gamma_log_sf(900.0, 1) == pytest.approx(-900.0)


def test_corrections() -> None:
    p = [0.01, 0.04, 0.03, 0.2]
    holm = stats.holm(p)
    assert holm.tolist() == pytest.approx([0.04, 0.09, 0.09, 0.2])
    bh = stats.benjamini_hochberg(p)
    assert bh.tolist() == pytest.approx([0.04, 0.0533333333, 0.0533333333, 0.2])
    assert stats.bonferroni(math.log(0.01), 3) == pytest.approx(math.log(0.03))
    assert math.exp(stats.sidak_min(math.log(0.1), 2)) == pytest.approx(1 - 0.9**2)


def test_spent_p_value_spends_alpha_over_every_look() -> None:
    assert math.exp(stats.spent_log_p(math.log(1e-4), 1)) == pytest.approx(1e-4 * math.pi**2 / 6)
    assert math.exp(stats.spent_log_p(math.log(1e-4), 3)) == pytest.approx(1e-4 * math.pi**2 * 9 / 6)
    assert stats.spent_log_p(math.log(0.5), 2) == 0.0
    # the α spent at look j is α / factor(j); over all looks it sums to α (here to 1e-6 of it)
    factors = [math.exp(stats.spent_log_p(0.0 - 50, j) + 50) for j in range(1, 10**6)]
    assert sum(1 / f for f in factors) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ConfigError, match="look"):
        stats.spent_log_p(-1.0, 0)


def test_fisher_matches_chi2() -> None:
    ps = [0.1, 0.2, 0.03]
    expected = sps.chi2.sf(-2 * sum(math.log(x) for x in ps), 2 * len(ps))
    assert math.exp(stats.fisher_combine([math.log(x) for x in ps])) == pytest.approx(expected)


def test_bad_parameters_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="'p' parameter"):
        stats.binomial_log_sf(3, 10, 1.5)
    with pytest.raises(ConfigError, match="'n' parameter"):
        stats.gamma_log_sf(1.0, 0)
