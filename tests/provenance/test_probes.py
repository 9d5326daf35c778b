"""Probe inputs of the behavioural line: reference answers compared at our answers' length."""

from __future__ import annotations

import numpy as np

from distillguard.fingerprint.behavioural import behavioural_test, similarity_table
from distillguard.provenance.probes import match_lengths


def test_match_lengths_cuts_at_whitespace_and_never_lengthens() -> None:
    ours = {"a": "short answer", "b": "x" * 50, "c": ""}
    ref = {"a": "a much longer reference answer", "b": "tiny", "c": "anything at all", "d": "kept whole"}
    got = match_lengths(ref, ours)
    assert got["a"] == "a much" and len(got["a"]) <= len(ours["a"])  # no half word
    assert got["b"] == "tiny"  # shorter than ours: unchanged
    assert got["c"] == ""
    assert got["d"] == "kept whole"  # we did not answer this prompt: nothing to match
    assert match_lengths({"a": "abcdefghijklmnop"}, {"a": "abc"}) == {"a": "abc"}  # one long word


def _null_p_values(cut: bool, runs: int, seed: int) -> np.ndarray:
    """Suspect, ours and four references are independent texts from one vocabulary (the null);
    ours and the suspect stop at a budget, the references run eight times longer."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(300)])

    def text(n_words: int) -> str:
        return " ".join(rng.choice(vocab, n_words))

    n, k = 30, 4
    out = []
    for _ in range(runs):
        suspect = [text(40) for _ in range(n)]
        ours = {str(j): text(40) for j in range(n)}
        refs = [{str(j): text(320) for j in range(n)} for _ in range(k)]
        if cut:
            refs = [match_lengths(r, ours) for r in refs]
        sim_ours, sim_refs = similarity_table(suspect, list(ours.values()), [list(r.values()) for r in refs])
        out.append(behavioural_test(sim_ours, sim_refs).p_value)
    return np.array(out)


def test_length_matched_references_keep_the_null_calibrated() -> None:
    runs, alpha = 200, 0.05
    matched = _null_p_values(cut=True, runs=runs, seed=11)
    # Exact test: at most alpha in expectation; 3 binomial standard deviations of slack.
    assert (matched <= alpha).mean() <= alpha + 3 * np.sqrt(alpha * (1 - alpha) / runs)
    assert 0.3 < np.median(matched) < 0.7  # roughly uniform, not stuck at 1
    # Uncut references are not exchangeable with ours: the p-values pile up at 1, so a real
    # descendant would be missed (and with other texts the bias can go the other way).
    uncut = _null_p_values(cut=False, runs=40, seed=11)
    assert np.median(uncut) > 0.95
