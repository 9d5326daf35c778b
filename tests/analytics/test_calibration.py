"""The flag line is set from the target benign false-positive rate (analytics.calibration)."""

import math

import numpy as np
import pytest

from distillguard.analytics.calibration import Threshold, calibrate_population, calibrate_reference
from distillguard.analytics.scan import ScanOptions, scan
from distillguard.analytics.simulate import SimConfig, simulate
from distillguard.errors import ConfigError
from distillguard.stats import binomial_log_sf


def upper_bound(n: int, rate: float, level: float = 1e-3) -> int:
    """Smallest k with P(Binomial(n, rate) >= k) <= level: more flags than this is a failure."""
    k = math.floor(n * rate)  # the tail probability is ~1/2 or more up to the mean
    while binomial_log_sf(k, n, rate) > math.log(level):
        k += 1
    return k


def _benign_stats(rng, n, pi=0.06, lam=3.0):
    # Over-dispersed benign statistic: a share pi has evidence, with a tail lam times heavier
    # than an exact p-value (P(s > t | s > 0) = 10 ** (-t / lam)).
    s = np.zeros(n)
    pos = rng.uniform(size=n) < pi
    s[pos] = rng.exponential(lam / math.log(10), size=pos.sum())
    return s


@pytest.mark.parametrize("target", [1e-3, 1e-2])
def test_population_tail_fit_meets_target_despite_attackers(rng, target):
    benign = _benign_stats(rng, 20_000)
    attackers = rng.uniform(20, 200, size=400)  # 2% of accounts, far out in the tail
    thr = calibrate_population(np.concatenate([benign, attackers]), target)
    # Attackers among the positives bias the inflation up (strict side), never below the truth.
    assert thr.method == "population-tail-fit" and 2.5 < thr.inflation < 6.0
    fresh = _benign_stats(rng, 200_000)
    assert (fresh >= thr.s_threshold).sum() < upper_bound(200_000, target)
    assert (attackers >= thr.s_threshold).all()
    # A nominal line (p <= target) on this over-dispersed statistic would miss the target.
    assert (fresh >= -math.log10(target)).sum() >= upper_bound(200_000, target)


def test_reference_conformal_quantile(rng):
    ref = _benign_stats(rng, 5000)
    thr = calibrate_reference(ref, 1e-3)
    assert thr.method == "reference-conformal" and thr.n_reference == 5000
    fresh = _benign_stats(rng, 200_000)
    assert (fresh >= thr.s_threshold).sum() < upper_bound(200_000, 1e-3)
    # Too small a reference for a conformal quantile at 0.1%: falls back to the tail fit.
    assert calibrate_reference(ref[:500], 1e-3).method == "population-tail-fit"


def test_nominal_when_nothing_to_fit_and_validation():
    thr = calibrate_population(np.zeros(100), 1e-3)
    assert thr.method == "nominal" and thr.s_threshold == pytest.approx(3.0)
    assert isinstance(thr, Threshold) and "nominal" in thr.as_dict()["how"]
    with pytest.raises(ConfigError, match="target_fpr"):
        calibrate_population(np.zeros(10), 0.7)
    with pytest.raises(ConfigError, match="finite"):
        calibrate_population(np.array([-1.0, 2.0]), 1e-3)
    with pytest.raises(ConfigError, match="empty"):
        calibrate_reference(np.array([]), 1e-3)


@pytest.fixture(scope="module")
def benign_logs(tmp_path_factory):
    out = tmp_path_factory.mktemp("benign")
    return [
        simulate(out / str(seed), SimConfig(n_benign=3000, seed=seed, attackers=False)).log_path
        for seed in (101, 102, 103)
    ]


@pytest.mark.parametrize("target", [1e-3, 1e-2])
def test_benign_only_population_flag_rate_within_binomial_bound(benign_logs, target):
    total_flags = total_accounts = 0
    for log in benign_logs:
        rep = scan([str(log)], ScanOptions(target_fpr=target))
        n, k = rep["summary"]["accounts"], rep["summary"]["flagged_accounts"]
        assert k < upper_bound(n, target), (log, k, rep["summary"]["threshold"])
        th = rep["summary"]["threshold"]
        assert th["target_fpr"] == target and th["s_threshold"] >= -math.log10(target) and th["how"]
        total_flags, total_accounts = total_flags + k, total_accounts + n
    assert total_flags < upper_bound(total_accounts, target)


def test_reference_log_calibrates_the_scan(benign_logs):
    rep = scan([str(benign_logs[0])], ScanOptions(reference=(str(benign_logs[1]),)))
    th = rep["summary"]["threshold"]
    # 3000 reference accounts are enough for a conformal quantile at 0.1%.
    assert th["method"] == "reference-conformal" and th["n_reference"] == 3000
    assert rep["summary"]["flagged_accounts"] < upper_bound(rep["summary"]["accounts"], 1e-3)
