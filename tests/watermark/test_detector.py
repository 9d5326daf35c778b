from __future__ import annotations

import numpy as np

from distillguard.watermark.detector import Detector, detect_any
from distillguard.watermark.keys import KeyRing
from distillguard.watermark.kgw import KGW, KGWConfig
from distillguard.watermark.simulate import synthetic_generate


def test_detect_many_matches_single_calls(key, rng) -> None:
    det = Detector("kgw", key, alpha=1e-4)
    texts = [rng.integers(0, 1000, n) for n in (5, 50, 300)]
    many = det.detect_many(texts)
    assert [d.log10_p_value for d in many] == [det.detect_ids(t).log10_p_value for t in texts]
    assert not many[0].enough_tokens


def test_rotation_detects_old_key_with_sidak_correction(key, other_key) -> None:
    rng = np.random.default_rng(51)
    old = KGW(KGWConfig(), other_key)
    text = synthetic_generate(old, rng, n_tokens=150, batch=1)[0]
    ring = KeyRing([key, other_key])  # rotated: new primary, old key still active
    single = old.detect(text)
    d = detect_any(ring, text)
    assert d.watermarked and d.key_id == other_key.key_id
    assert d.details["correction"] == "sidak over 2 keys"
    # Šidák with 2 keys: p' = 1-(1-p)^2 ≈ 2p for small p.
    assert abs(d.log10_p_value - (single.log10_p_value + np.log10(2))) < 1e-6
    assert set(d.details["per_key_log10_p_value"]) == {key.key_id, other_key.key_id}


def test_rotation_null_stays_calibrated(key, other_key) -> None:
    rng = np.random.default_rng(52)
    det = Detector("gumbel", KeyRing([key, other_key]))
    logp = np.array([det.detect_ids(rng.integers(0, 9000, 80)).log10_p_value for _ in range(400)])
    # Šidák is exact here: FPR at 0.1 over 400 texts is Binomial(400, 0.1); 1e-4 quantiles.
    assert 20 <= int((logp <= -1).sum()) <= 66
