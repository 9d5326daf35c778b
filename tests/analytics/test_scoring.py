import math

import numpy as np
import pytest

from distillguard.analytics.scoring import COUNT_FEATURES, BinomialTailScorer, ScorerConfig, scorers
from distillguard.errors import ConfigError, NotFittedError


def _row(aid, n, **counts):
    r = {
        "account_id": aid,
        "n_requests": n,
        "peak_hour": 2,
        "n_templates": 1,
        "distinct_ratio": 1.0,
        "bench_share": 0.0,
        "gap_cv": 1.5,
    }
    r.update({f: counts.get(f, 0) for f in COUNT_FEATURES})
    return r


def _benign(rng, k):
    rows = []
    for i in range(k):
        n = int(rng.integers(5, 200))
        rate = rng.uniform(0.0, 0.1)  # per-account variation in ordinary reuse
        rows.append(_row(f"b{i}", n, n_reused=int(rng.binomial(n, rate)), n_cot=int(rng.binomial(n, 0.01))))
    return rows


def test_registry_and_config_validation():
    assert scorers.get("binomial-tail") is BinomialTailScorer
    with pytest.raises(ConfigError, match="target_fpr"):
        ScorerConfig(target_fpr=1.5)
    with pytest.raises(NotFittedError):
        BinomialTailScorer().score([_row("a", 10)])
    with pytest.raises(ConfigError):
        BinomialTailScorer().fit([])


def test_benign_false_positive_rate_within_bound(rng):
    # Every benign account's true rates lie below the robust fence, so each of the 5
    # Bonferroni-combined tests has size <= target: expected flags <= 0.001 * 3000 = 3.
    # P(Poisson(3) >= 10) < 0.002, so 10 or more flags would mean the calibration is broken.
    pop = _benign(rng, 3000)
    res = BinomialTailScorer(ScorerConfig(target_fpr=1e-3)).fit(pop).score(pop)
    assert sum(r.flagged for r in res) < 10
    assert all(0.0 <= r.score <= 1.0 for r in res)


def test_extractor_flagged_with_reasons_and_allowlist(rng):
    pop = _benign(rng, 500)
    attackers = [_row("x-cot", 150, n_cot=60, n_reused=140), _row("x-lp", 120, n_logprob=120)]
    sc = BinomialTailScorer().fit(pop + attackers)
    res = {r.account_id: r for r in sc.score(pop + attackers, allowlist=frozenset({"x-lp"}))}
    assert res["x-cot"].flagged and res["x-cot"].score >= 0.5
    assert any("step-by-step" in r and "40% of 150" in r for r in res["x-cot"].reasons)
    assert not res["x-lp"].flagged and res["x-lp"].score == 1.0
    assert any("allowlisted" in r for r in res["x-lp"].reasons)


def test_app_backend_narrow_template_not_flagged(rng):
    pop = _benign(rng, 300)
    app = _row("app", 3000, n_reused=2999)
    app["distinct_ratio"] = 0.002
    res = {r.account_id: r for r in BinomialTailScorer().fit([*pop, app]).score([app])}
    assert not res["app"].flagged
    assert any("app-backend" in r for r in res["app"].reasons)


def test_score_maps_threshold_to_half():
    pop = [_row(f"b{i}", 50, n_reused=2) for i in range(50)]
    sc = BinomialTailScorer(ScorerConfig(target_fpr=1e-3)).fit(pop)
    r = sc.score([_row("z", 50, n_logprob=50)])[0]
    assert r.flagged and r.score == 1.0 and r.log10_p < -6
    assert math.isclose(min(1.0, -r.log10_p / 6), r.score)
    assert np.isclose(sc.null_rates_["n_logprob"], 1e-3)
