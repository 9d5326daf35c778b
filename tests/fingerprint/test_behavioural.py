import math

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.behavioural import (
    _uniform_sum_log_cdf,
    behavioural_test,
    char_ngram_jaccard,
    similarity_table,
)


def test_uniform_sum_cdf_matches_enumeration() -> None:
    import itertools

    n, k = 4, 3
    sums = [sum(c) for c in itertools.product(range(k + 1), repeat=n)]
    for t in range(0, n * k + 1):
        expected = sum(s <= t for s in sums) / len(sums)
        assert math.exp(_uniform_sum_log_cdf(t, n, k)) == pytest.approx(expected)


def test_null_is_calibrated(rng) -> None:
    n, k, runs, alpha = 60, 5, 2000, 0.01
    hits = 0
    for _ in range(runs):
        sims = rng.random((n, k + 1))  # exchangeable: ours is just one of k+1 models
        hits += behavioural_test(sims[:, 0], sims[:, 1:], alpha=alpha).descends
    # upper 1e-4 quantile of Binomial(2000, 0.01) is 37
    assert hits <= 37


def test_descendant_detected(rng) -> None:
    n, k = 200, 5
    refs = rng.random((n, k))
    ours = rng.random(n) + 0.15  # modestly closer to ours on average
    res = behavioural_test(ours, refs, alpha=1e-6)
    assert res.descends and res.p_value < 1e-6 and res.top_probes


def test_similarity_table_and_jaccard() -> None:
    assert char_ngram_jaccard("hello world", "hello world") == 1.0
    assert char_ngram_jaccard("abcdef", "uvwxyz") == 0.0
    so, sr = similarity_table(["a b c d"], ["a b c d"], [["x y z w"], ["a b c e"]])
    assert so.shape == (1,) and sr.shape == (1, 2) and so[0] == 1.0
    with pytest.raises(InputError):
        similarity_table(["a"], ["a", "b"], [["x"]])


def test_errors() -> None:
    with pytest.raises(ConfigError):
        behavioural_test(np.ones(3), np.ones((3, 2)), alpha=2.0)
    with pytest.raises(InputError):
        behavioural_test(np.ones(3), np.ones((4, 2)))
