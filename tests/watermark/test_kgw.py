from __future__ import annotations

import math

import numpy as np
import pytest

from distillguard import stats
from distillguard.errors import ConfigError
from distillguard.watermark.kgw import KGW, KGWConfig
from distillguard.watermark.simulate import synthetic_generate


def test_config_messages() -> None:
    with pytest.raises(
        ConfigError, match=r"The 'gamma' parameter of KGWConfig must be a float in \(0, 1\). Got 1.5"
    ):
        KGWConfig(gamma=1.5)
    with pytest.raises(ConfigError, match="'delta'"):
        KGWConfig(delta=-1.0)
    assert KGWConfig(payload_bits=32).effective_gamma == 0.25


def test_process_biases_exactly_the_green_top_k(key, rng) -> None:
    scheme = KGW(KGWConfig(gamma=0.5, delta=3.0, bias_top_k=100), key)
    scores = rng.standard_normal((2, 1000)).astype(np.float32)
    ids = rng.integers(0, 1000, (2, 5))
    out = scheme.process(ids, scores, [None, None])
    changed = out != scores
    assert np.allclose((out - scores)[changed], 3.0)
    top = np.argsort(scores, axis=1)[:, -100:]
    for row in range(2):
        assert set(np.flatnonzero(changed[row])) <= set(top[row])
        assert 25 <= changed[row].sum() <= 75  # ~Binomial(100, 0.5)


def test_detection_is_exact_binomial(key) -> None:
    scheme = KGW(KGWConfig(gamma=0.25), key)
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 30_000, 500)
    d = scheme.detect(ids)
    assert d.n_scored == 498 and d.score == round(d.details["green_fraction"] * 498)
    assert d.log10_p_value == pytest.approx(stats.binomial_log_sf(int(d.score), 498, 0.25) / math.log(10))


def test_dedup_ignores_repetition(key) -> None:
    scheme = KGW(KGWConfig(), key)
    rng = np.random.default_rng(8)
    base = rng.integers(0, 30_000, 40)
    repeated = np.tile(base, 50)
    assert scheme.detect(repeated).n_scored <= 40
    assert scheme.detect(repeated, dedup=False).n_scored == repeated.size - 2


def test_trace_names_the_right_candidate(key) -> None:
    rng = np.random.default_rng(21)
    scheme = KGW(KGWConfig(payload_bits=32), key)
    accounts = [f"acct-{i}" for i in range(200)]
    from distillguard.watermark.payload import account_id

    chosen = [accounts[i] for i in (3, 77, 150)]
    # 300 tokens: a quarter of the tuples fall in anchor slots, which say nothing about the account
    # (with 8 anchors, 300 tokens separate as often as 200 without: 57 vs 56 of 60 seeded texts)
    texts = synthetic_generate(
        scheme, rng, n_tokens=300, batch=3, payloads=[account_id(key, a) for a in chosen]
    )
    for acct, text in zip(chosen, texts, strict=True):
        res = scheme.trace(text, accounts)
        assert res.significant and res.account == acct and res.separated
        assert "bonferroni over 200" in res.correction
    null = scheme.trace(rng.integers(0, 512, 200), accounts, alpha=1e-3)
    assert null.account is None and not null.significant


def test_trace_reports_inseparable_duplicates(key) -> None:
    rng = np.random.default_rng(22)
    scheme = KGW(KGWConfig(payload_bits=32), key)
    text = synthetic_generate(scheme, rng, n_tokens=200, batch=1, payloads=[12345])[0]
    res = scheme.trace(text, [12345, 999, 12345])
    assert res.significant and not res.separated and res.separation_p_value == 1.0


def test_trace_requires_payload_mode(key) -> None:
    with pytest.raises(ConfigError, match="payload"):
        KGW(KGWConfig(), key).trace([1, 2, 3], [1])


def test_payload_p_value_is_detect_times_checksum(key) -> None:
    rng = np.random.default_rng(23)
    scheme = KGW(KGWConfig(payload_bits=32, checksum_bits=12), key)
    text = synthetic_generate(scheme, rng, n_tokens=500, batch=1, payloads=[4242])[0]
    d = scheme.detect(text)
    assert d.payload is not None and d.payload.value == 4242 and d.payload.checksum_ok
    assert d.details["payload_log10_p_value"] == pytest.approx(d.log10_p_value - 12 * math.log10(2))
    assert d.payload.bits_total == 44 and d.payload.bits_decided == 44


def test_long_payload_text_uses_blocks(key) -> None:
    rng = np.random.default_rng(24)
    scheme = KGW(KGWConfig(payload_bits=32, payload_block=256), key)
    d = scheme.detect(rng.integers(0, 40_000, 1000))
    # per block: one max-count group per payload chunk and one binomial group for the anchors
    assert d.details["n_groups"] == 4 * (scheme.codec(key).n_chunks + 1) and not d.watermarked
