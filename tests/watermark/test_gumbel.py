from __future__ import annotations

import math

import numpy as np
import pytest

from distillguard import stats
from distillguard.errors import ConfigError
from distillguard.watermark.gumbel import Gumbel, GumbelConfig
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.simulate import synthetic_generate


def test_config_messages() -> None:
    with pytest.raises(ConfigError, match=r"'top_k' parameter of GumbelConfig must be an int ≥ 0. Got -1"):
        GumbelConfig(top_k=-1)


def test_process_puts_all_mass_on_one_allowed_token(key, rng) -> None:
    scheme = Gumbel(GumbelConfig(), key)
    scores = rng.standard_normal((3, 300)).astype(np.float32)
    scores[:, :150] = -np.inf  # filtered by top-p upstream: must never be chosen
    out = scheme.process(rng.integers(0, 300, (3, 4)), scores, [None] * 3)
    assert np.all(np.isfinite(out).sum(axis=1) == 1)
    assert np.all(np.argmax(out, axis=1) >= 150) and np.all(out.max(axis=1) == 0.0)


def test_sampling_is_distortion_free() -> None:
    """Over keys, the chosen token follows softmax(scores): chi-square goodness of fit."""
    from scipy import stats as sps

    probs = np.array([0.5, 0.25, 0.15, 0.1])
    scores = np.log(probs).astype(np.float64)[None, :]
    n = 3000
    counts = np.zeros(4)
    rng = np.random.default_rng(9)
    for i in range(n):
        scheme = Gumbel(GumbelConfig(top_k=0), SecretKey(rng.bytes(32)))
        counts[int(np.argmax(scheme.process(np.array([[i, i + 1]]), scores, [None])))] += 1
    chi2 = float(((counts - n * probs) ** 2 / (n * probs)).sum())
    assert chi2 < sps.chi2.ppf(1 - 1e-4, df=3)


def test_detection_is_exact_gamma(key) -> None:
    rng = np.random.default_rng(5)
    d = Gumbel(GumbelConfig(), key).detect(rng.integers(0, 30_000, 300))
    assert d.log10_p_value == pytest.approx(stats.gamma_log_sf(d.score, d.n_scored) / math.log(10))


def test_trace_and_payload(key) -> None:
    rng = np.random.default_rng(31)
    scheme = Gumbel(GumbelConfig(payload_bits=32), key)
    candidates = [int(x) for x in rng.integers(1, 2**32, 100)]
    texts = synthetic_generate(scheme, rng, n_tokens=120, batch=2, payloads=candidates[:2])
    for i, text in enumerate(texts):
        res = scheme.trace(text, candidates)
        assert res.significant and res.account == candidates[i] and res.separated
    res = scheme.trace(rng.integers(0, 512, 120), candidates, alpha=1e-3)
    assert not res.significant and res.account is None
