from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from distillguard.errors import ConfigError, InputError
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.payload import NO_ACCOUNT, PayloadCodec, account_id, decode_groups


def codec(key: SecretKey, checksum_bits: int = 16, chunk_bits: int = 2) -> PayloadCodec:
    return PayloadCodec.for_key(key, 32, checksum_bits, chunk_bits)


@pytest.mark.parametrize("chunk_bits", [1, 2, 3, 4])
def test_encode_decode_round_trip(key, rng, chunk_bits: int) -> None:
    c = codec(key, chunk_bits=chunk_bits)
    assert c.n_chunks == -(-48 // chunk_bits)
    for value in [0, 1, 2**32 - 1, *(int(v) for v in rng.integers(0, 2**32, 200))]:
        chunks = c.encode(value)
        assert chunks.min() >= 0 and chunks.max() < c.n_colors
        assert c.decode(chunks) == (value, True)


def test_random_messages_pass_checksum_at_rate_two_to_minus_c(key) -> None:
    """The misattribution bound rests on this: a uniform message passes w.p. 2^-c."""
    rng = np.random.default_rng(61)
    c = codec(key, checksum_bits=4)
    n = 8000
    passed = sum(c.decode(rng.integers(0, c.n_colors, c.n_chunks))[1] for _ in range(n))
    assert sps.binom.ppf(1e-4, n, 1 / 16) <= passed <= sps.binom.ppf(1 - 1e-4, n, 1 / 16)


def test_noisy_evidence_never_names_a_wrong_account(key) -> None:
    """Thousands of watermarked-but-noisy decodes: wrong names only by checksum collision."""
    rng = np.random.default_rng(62)
    c = codec(key)
    wrong = named = caught = 0
    n = 3000
    for _ in range(n):
        acct = int(rng.integers(1, 2**32))
        truth = c.encode(acct)
        strength = rng.uniform(0.0, 0.6)
        probs = np.full((c.n_chunks, c.n_colors), (1 - strength) / c.n_colors)
        probs[np.arange(c.n_chunks), truth] += strength
        counts = np.array([rng.multinomial(int(rng.integers(5, 40)), p) for p in probs])
        est, det = decode_groups(c, counts.astype(float), -50.0, watermarked=True)
        caught += det["payload_status"] == "checksum failed"
        named += est.value == acct
        wrong += est.value not in (None, acct)
    assert named > 0.1 * n and caught > 0.1 * n  # both paths exercised
    # Expected wrong ≤ n · 2^-16 ≈ 0.05; the 1e-4 binomial quantile of that is 1.
    assert wrong <= sps.binom.ppf(1 - 1e-4, n, 2**-16)


def test_decode_states_why_nothing_was_named(key) -> None:
    c = codec(key)
    good = np.zeros((c.n_chunks, c.n_colors))
    good[np.arange(c.n_chunks), c.encode(777)] = 5.0
    est, det = decode_groups(c, good, -40.0, watermarked=True)
    assert est.value == 777 and est.checksum_ok and det["payload_status"] == "named"
    assert est.p_value == pytest.approx(10 ** (-40 / np.log(10)) * 2**-16, rel=1e-9)
    assert decode_groups(c, good, -40.0, watermarked=False)[0].value is None
    tied = good.copy()
    tied[0, :] = 5.0
    est, det = decode_groups(c, tied, -40.0, watermarked=True)
    assert est.value is None and det["payload_status"] == "undecided chunks"
    none = np.zeros_like(good)
    none[np.arange(c.n_chunks), c.encode(None)] = 5.0
    est, det = decode_groups(c, none, -40.0, watermarked=True)
    assert est.value is None and det["payload_status"] == "no account embedded"


def test_account_ids(key, other_key) -> None:
    a = account_id(key, "acct-1")
    assert a == account_id(key, "acct-1") and 1 <= a < 2**32
    assert a != account_id(other_key, "acct-1") and a != account_id(key, "acct-2")
    with pytest.raises(InputError):
        account_id(key, "")


def test_codec_validation(key) -> None:
    with pytest.raises(ConfigError, match="payload_bits"):
        PayloadCodec.for_key(key, 16, 8, 2)
    c = codec(key)
    assert c.check_id(None) == NO_ACCOUNT
    with pytest.raises(InputError, match="payload"):
        c.encode(2**32)
    with pytest.raises(InputError):
        c.encode(True)  # type: ignore[arg-type]


def test_anchor_slots_follow_the_payload_chunks(key, rng) -> None:
    plain = codec(key)
    anchored = PayloadCodec.for_key(key, 32, 16, 2, anchor_chunks=8)
    assert plain.n_slots == plain.n_chunks and anchored.n_slots == anchored.n_chunks + 8
    # the anchors' colours come from the key alone: the same for every account, another key's differ
    again = PayloadCodec.for_key(key, 32, 16, 2, anchor_chunks=8)
    other = PayloadCodec.for_key(SecretKey(rng.bytes(32)), 32, 16, 2, anchor_chunks=8)
    assert anchored.anchors == again.anchors and len(anchored.anchors) == 8
    assert all(0 <= a < 4 for a in anchored.anchors)
    assert other.anchors != anchored.anchors  # equal by chance with probability 4^-8
    for value in (1, 12345, 2**32 - 1):
        slots = anchored.slot_values(value)
        assert slots[: anchored.n_chunks].tolist() == anchored.encode(value).tolist()
        assert tuple(slots[anchored.n_chunks :].tolist()) == anchored.anchors
    # every slot is picked about equally often, the anchors a share 8 / (24 + 8)
    picked = anchored.slots(rng.integers(0, 2**63, 64_000, dtype=np.uint64) * np.uint64(2))
    assert picked.min() == 0 and picked.max() == anchored.n_slots - 1
    assert abs(np.mean(picked >= anchored.n_chunks) - 0.25) < 0.01
    # without anchors a context picks the same chunk as before anchors existed
    from distillguard.watermark.prf import bucket

    ctx = rng.integers(0, 2**63, 100, dtype=np.uint64)
    assert np.array_equal(plain.slots(ctx), bucket(ctx, plain.n_chunks))
