from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import ConfigError
from distillguard.watermark.prf import (
    SipKey,
    bucket,
    context_hashes,
    pair_prf,
    siphash24_bytes,
    siphash24_words,
    to_uniform,
    top_bits,
)

REF_KEY = SipKey.from_bytes(bytes(range(16)))
# SipHash-2-4 reference vectors (paper / reference implementation): key 00..0f, message 00..n-1.
VECTORS = {
    0: 0x726FDB47DD0E0E31,
    1: 0x74F839C593DC67FD,
    2: 0x0D6C8009D9A94F5A,
    3: 0x85676696D7FB7E2D,
    7: 0xAB0200F58B01D137,
    8: 0x93F5F5799A932462,
    15: 0xA129CA6149BE45E5,
    16: 0x3F2ACC7F57C29BDB,
    24: 0xB8AD50C6F649AF94,
}


@pytest.mark.parametrize(("n", "expected"), sorted(VECTORS.items()))
def test_scalar_reference_vectors(n: int, expected: int) -> None:
    assert siphash24_bytes(REF_KEY, bytes(range(n))) == expected


@pytest.mark.parametrize("n_words", [1, 2, 3])
def test_vectorised_matches_reference_vectors(n_words: int) -> None:
    msg = bytes(range(8 * n_words))
    words = np.frombuffer(msg, dtype="<u8").reshape(1, n_words)
    assert int(siphash24_words(REF_KEY, words)[0]) == VECTORS[8 * n_words]


def test_vectorised_matches_scalar_on_random_messages(rng: np.random.Generator) -> None:
    key = SipKey.from_bytes(rng.bytes(16))
    words = rng.integers(0, 2**63, (50, 3), dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    got = siphash24_words(key, words)
    for row, value in zip(words, got, strict=True):
        assert int(value) == siphash24_bytes(key, row.astype("<u8").tobytes())


def test_chunked_evaluation_is_consistent(rng: np.random.Generator) -> None:
    key = SipKey.from_bytes(rng.bytes(16))
    toks = rng.integers(0, 50_000, 100_000)  # spans several internal chunks
    full = pair_prf(key, np.uint64(12345), toks)
    assert np.array_equal(full[-10:], pair_prf(key, np.uint64(12345), toks[-10:]))


def test_context_hashes_align_with_windows(rng: np.random.Generator) -> None:
    key = SipKey.from_bytes(rng.bytes(16))
    ids = rng.integers(0, 1000, 20)
    ctx = context_hashes(key, ids, 3)
    assert ctx.shape == (18,)
    assert int(ctx[5]) == siphash24_bytes(key, ids[5:8].astype("<u8").tobytes())
    assert context_hashes(key, ids[:2], 3).size == 0


def test_output_helpers_are_uniform(rng: np.random.Generator) -> None:
    key = SipKey.from_bytes(rng.bytes(16))
    v = pair_prf(key, np.uint64(1), np.arange(200_000))
    u = to_uniform(v)
    assert u.min() > 0.0 and u.max() < 1.0
    # Mean of 200k uniforms: sd 6.5e-4; 6 sd bound.
    assert abs(u.mean() - 0.5) < 6 * (1 / 12 / u.size) ** 0.5
    counts = np.bincount(top_bits(v, 2), minlength=4)
    assert counts.size == 4 and np.all(np.abs(counts - 50_000) < 6 * (200_000 * 0.25 * 0.75) ** 0.5)
    b = bucket(v, 22)
    assert b.min() == 0 and b.max() == 21


def test_key_checks_and_hidden_repr() -> None:
    with pytest.raises(ConfigError, match="16 bytes"):
        SipKey.from_bytes(b"short")
    assert "hidden" in repr(REF_KEY) and str(REF_KEY.k0) not in repr(REF_KEY)
    with pytest.raises(ConfigError, match="non-negative"):
        siphash24_words(REF_KEY, np.array([[-1]]))
