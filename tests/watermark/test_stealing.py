"""The watermark-stealing attacker on the synthetic model (no real model needed).

The toy model draws i.i.d. symmetric logits each step, so every token has the same marginal
probability: uniform random ids are an exact sample of its unwatermarked output (the
attacker's reference). Chance-level checks use the exact null: the attacker's labels never
depend on the key, so each distinct labelled (context, token) pair is green independently with
probability γ, and the precision is Binomial(n, γ)/n — the bounds below are 4.5 standard
deviations (two-sided ~7e-6).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError, NotFittedError
from distillguard.watermark import KGW, Gumbel, GumbelConfig, KGWConfig, SecretKey
from distillguard.watermark.simulate import synthetic_generate
from distillguard.watermark.stealing import (
    GreenListStealer,
    StealerConfig,
    StealingPrecision,
    evaluate_precision,
    true_green,
)

VOCAB = 64


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240611)


def _within_chance(res: StealingPrecision | None, gamma: float, n: int, k: int) -> None:
    assert n > 50, "too few labels for the check to mean anything"
    sd = math.sqrt(gamma * (1 - gamma) / n)
    assert abs(k / n - gamma) <= 4.5 * sd, (k, n, res)


@cache
def _corpora(key: SecretKey, width: int) -> tuple[KGW, np.ndarray, np.ndarray, np.ndarray]:
    """The harvest (8,000 tokens), held-out text and reference; built once per key and width."""
    rng = np.random.default_rng([width, 0x57EA1])
    scheme = KGW(KGWConfig(context_width=width), key)
    wm = synthetic_generate(scheme, rng, n_tokens=1000, vocab=VOCAB, batch=8)
    held = synthetic_generate(scheme, rng, n_tokens=200, vocab=VOCAB, batch=4)
    ref = rng.integers(0, VOCAB, (8, 1000))
    return scheme, wm, held, ref


def test_precision_rises_with_harvested_tokens_width_1(key: SecretKey) -> None:
    scheme, wm, held, ref = _corpora(key, 1)
    small = evaluate_precision(
        GreenListStealer(StealerConfig(context_width=1)).fit(wm[:, :40], ref), held, scheme
    )
    large = evaluate_precision(GreenListStealer(StealerConfig(context_width=1)).fit(wm, ref), held, scheme)
    # 8,000 tokens over 64 contexts: ~125 per context, green tokens ~7x as frequent as red ones
    assert large.precision >= 0.85
    assert large.precision > small.precision + 0.15
    assert large.log10_p_value < -50
    assert large.coverage == 1.0 and large.chance == scheme.config.effective_gamma


def test_chance_for_a_never_used_key(key: SecretKey, other_key: SecretKey) -> None:
    _, wm, held, ref = _corpora(key, 1)
    stealer = GreenListStealer(StealerConfig(context_width=1)).fit(wm, ref)
    res = evaluate_precision(stealer, held, KGW(KGWConfig(context_width=1), other_key))
    _within_chance(res, 0.25, res.n_labelled, res.n_green)


def test_chance_for_an_unwatermarked_harvest(key: SecretKey, rng: np.random.Generator) -> None:
    scheme, _, held, ref = _corpora(key, 1)
    clean = rng.integers(0, VOCAB, (8, 1000))
    res = evaluate_precision(GreenListStealer(StealerConfig(context_width=1)).fit(clean, ref), held, scheme)
    _within_chance(res, 0.25, res.n_labelled, res.n_green)


def test_width_2_backoff_labels_are_at_chance(key: SecretKey) -> None:
    """Our context hash mixes both tokens, so a 1-token suffix says nothing about a new pair."""
    scheme, wm, held, ref = _corpora(key, 2)
    res = evaluate_precision(GreenListStealer(StealerConfig(context_width=2)).fit(wm, ref), held, scheme)
    by = {o.order: o for o in res.by_order}
    assert set(by) == {1, 2}
    _within_chance(res, 0.25, by[1].n_labelled, by[1].n_green)
    assert by[2].precision > 0.45 and by[2].n_labelled > 100
    no_backoff = GreenListStealer(StealerConfig(context_width=2, backoff=False)).fit(wm, ref)
    res2 = evaluate_precision(no_backoff, held, scheme)
    assert [o.order for o in res2.by_order] == [2]
    assert res2.coverage == pytest.approx(by[2].coverage)


def test_spoofed_text_passes_the_real_detector(key: SecretKey, rng: np.random.Generator) -> None:
    scheme, wm, _, ref = _corpora(key, 1)
    stealer = GreenListStealer(StealerConfig(context_width=1)).fit(wm, ref)

    def sample(biased: bool) -> np.ndarray:
        ids = rng.integers(0, VOCAB, (4, 2))
        for _ in range(200):
            logits = rng.standard_normal((4, VOCAB)) * 2.5
            if biased:
                logits = stealer.bias(ids, logits, 4.0)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            nxt = np.array([rng.choice(VOCAB, p=row) for row in p])
            ids = np.concatenate([ids, nxt[:, None]], axis=1)
        return ids[:, 2:]

    assert all(scheme.detect(row, alpha=1e-3).watermarked for row in sample(True))
    assert not any(scheme.detect(row, alpha=1e-3).watermarked for row in sample(False))


def test_true_green_matches_the_detector(key: SecretKey, rng: np.random.Generator) -> None:
    scheme = KGW(KGWConfig(context_width=2), key)
    text = synthetic_generate(scheme, rng, n_tokens=300, vocab=VOCAB, batch=1)[0]
    ctx = np.lib.stride_tricks.sliding_window_view(text[:-1], 2)
    green = true_green(scheme, ctx, text[2:])
    det = scheme.detect(text, dedup=False)
    assert green.sum() == det.score and green.mean() == pytest.approx(det.details["green_fraction"])


def test_gumbel_truth_is_the_top_gamma_of_the_uniforms(key: SecretKey, rng: np.random.Generator) -> None:
    scheme = Gumbel(GumbelConfig(context_width=1), key)
    n = 20_000
    green = true_green(scheme, rng.integers(0, 1000, (n, 1)), rng.integers(0, 1000, n), gumbel_gamma=0.1)
    assert abs(green.mean() - 0.1) <= 4.5 * math.sqrt(0.1 * 0.9 / n)


def test_estimate_and_bias(key: SecretKey) -> None:
    _, wm, _, ref = _corpora(key, 1)
    stealer = GreenListStealer(StealerConfig(context_width=1, max_candidates=3)).fit(wm, ref)
    est = stealer.estimate([5, 7])  # only the last token counts at width 1
    assert est.order == 1 and 0 < est.tokens.size <= 3
    assert np.all(np.diff(est.scores) <= 0) and np.all(est.scores > 0)
    seen = {int(wm[r, i + 1]) for r in range(wm.shape[0]) for i in range(wm.shape[1] - 1) if wm[r, i] == 7}
    assert set(est.tokens.tolist()) <= seen
    scores = np.zeros((2, VOCAB), dtype=np.float32)
    out = stealer.bias(np.array([[1, 7], [3, 7]]), scores, 2.5)
    assert out.dtype == np.float32 and np.all(scores == 0)
    assert set(np.flatnonzero(out[0]).tolist()) == set(est.tokens.tolist()) and np.all(out[1] == out[0])
    assert stealer.n_watermarked_tokens_ == 8 * 999 and "harvested" in repr(stealer)


def test_unseen_context_without_backoff_labels_nothing(key: SecretKey) -> None:
    _, wm, _, ref = _corpora(key, 1)
    est = GreenListStealer(StealerConfig(context_width=1, backoff=False)).fit(wm, ref).estimate([VOCAB + 5])
    assert est.order == 0 and est.tokens.size == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("context_width", 0),
        ("context_width", 9),
        ("backoff", 1),
        ("min_count", 0),
        ("assumed_gamma", 1.0),
        ("assumed_delta", 0.0),
        ("reference_prior", -1.0),
        ("max_candidates", 0),
        ("min_score", math.nan),
    ],
)
def test_config_is_validated(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"'{field}' parameter of StealerConfig"):
        StealerConfig(**{field: value})  # type: ignore[arg-type]


def test_errors(key: SecretKey) -> None:
    stealer = GreenListStealer(StealerConfig(context_width=2))
    with pytest.raises(NotFittedError):
        stealer.estimate([1, 2])
    with pytest.raises(InputError, match="watermarked corpus"):
        stealer.fit([[1, 2]], [[1, 2, 3]])
    stealer.fit([[1, 2, 3, 4]], [[1, 2, 3]])
    with pytest.raises(InputError, match="at least context_width=2"):
        stealer.estimate([1])
    with pytest.raises(InputError, match="same batch"):
        stealer.bias(np.zeros((2, 3), np.int64), np.zeros((1, 8)), 1.0)
    with pytest.raises(ConfigError, match="differs from the scheme"):
        evaluate_precision(stealer, [[1, 2, 3]], KGW(KGWConfig(context_width=1), key))
    with pytest.raises(ConfigError, match="without a payload"):
        true_green(KGW(KGWConfig(payload_bits=32), key), np.zeros((1, 2), np.int64), np.zeros(1, np.int64))
    with pytest.raises(InputError, match="shape"):
        true_green(KGW(KGWConfig(), key), np.zeros((3, 1), np.int64), np.zeros(3, np.int64))
    with pytest.raises(ConfigError):
        GreenListStealer({"context_width": 2})  # type: ignore[arg-type]
