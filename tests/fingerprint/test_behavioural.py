import math

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.behavioural import (
    _uniform_sum_log_cdf,
    behavioural_test,
    char_ngram_jaccard,
    embedding_similarity,
    predictability_test,
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


@pytest.mark.parametrize("k", [1, 2, 4])
def test_predictability_null_is_calibrated(rng, k: int) -> None:
    # A suspect exchangeable with the references: its answers' NLL is one more draw of theirs.
    n, runs = 50, 2000
    ps = np.array([predictability_test(*(lambda x: (x[:, 0], x[:, 1:]))(rng.gamma(4.0, 0.5, (n, k + 1))))
                   .p_value for _ in range(runs)])
    for alpha, allowed in ((0.01, 37), (0.05, 127)):  # ~1e-4 upper quantiles of Binomial(2000, alpha)
        assert (ps <= alpha).sum() <= allowed


def test_predictability_finds_a_suspect_our_model_predicts_better(rng) -> None:
    n, k = 100, 2
    refs = rng.gamma(4.0, 0.5, (n, k))
    student = rng.gamma(4.0, 0.5, n) - 1.0   # our model finds its answers more likely (sd 1.0)
    res = predictability_test(student, refs, alpha=1e-6)
    assert res.descends and res.top_probes
    assert "exchangeable with the suspect" in res.assumptions
    # the same numbers as a similarity view would be read the other way round: not descent
    assert not behavioural_test(student, refs, alpha=1e-6).descends


def test_predictability_counts_empty_answers_against_descent() -> None:
    refs = np.full((20, 1), 3.0)
    # the suspect says nothing: never more predictable than a reference
    assert predictability_test(np.full(20, np.nan), refs).statistic == 20
    # a reference says nothing: it beats the suspect however predictable the suspect is
    assert predictability_test(np.full(20, 0.1), np.full((20, 1), np.nan)).statistic == 20
    assert predictability_test(np.full(20, 0.1), refs).statistic == 0


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


def _bag_of_words(texts: list[str]) -> np.ndarray:
    vocab = {w: i for i, w in enumerate(sorted({w for t in texts for w in t.split()}))}
    out = np.zeros((len(texts), max(1, len(vocab))))
    for r, t in enumerate(texts):
        for w in t.split():
            out[r, vocab[w]] += 1.0
    return out


def test_embedding_similarity_is_cosine_and_encodes_each_text_once() -> None:
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return _bag_of_words(texts)

    texts = ["a b", "a b", "a c", "d", ""]
    sim = embedding_similarity(encode, texts)
    assert calls == [["a b", "a c", "d", ""]]  # distinct texts, one batch
    assert math.isclose(sim("a b", "a b"), 1.0) and math.isclose(sim("a b", "a c"), 0.5)
    assert sim("a b", "d") == 0.0 and sim("", "a b") == 0.0  # an empty answer is close to nothing
    sim_ours, sim_refs = similarity_table(["a b"], ["a c"], [["d"]], sim)
    assert math.isclose(sim_ours[0], 0.5) and sim_refs[0, 0] == 0.0
    with pytest.raises(InputError, match="not given the text"):
        sim("a b", "never encoded")
    with pytest.raises(InputError, match="one row per text"):
        embedding_similarity(lambda ts: np.zeros((1, 3)), ["x", "y"])
