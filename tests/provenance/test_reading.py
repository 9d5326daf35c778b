"""Open-model reading test: valid null for a model that predicts our text perfectly; power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.provenance import ReadingItem, fpr_upper_bound, reading_test
from distillguard.provenance.simulate import CountStudent, MarkovTeacher
from distillguard.watermark import SecretKey

from .conftest import VOCAB, build, distilled_student


def items_from(probs_of, texts: np.ndarray, k: int = 32) -> list[ReadingItem]:
    out = []
    for t in texts:
        p = np.stack([probs_of(int(x)) for x in t])
        top = np.argsort(-p, axis=1)[:, :k]
        out.append(ReadingItem(t, top, np.take_along_axis(p, top, axis=1)))
    return out


def teacher_probs(teacher: MarkovTeacher):
    def f(x: int) -> np.ndarray:
        z = teacher.table[x].astype(np.float64)
        e = np.exp(z - z.max())
        return e / e.sum()

    return f


@pytest.mark.parametrize("statistic", ["top1", "mass"])
@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_null_holds_for_our_own_unwatermarked_model(name: str, statistic: str, teacher) -> None:
    # The hardest clean suspect: it *is* the teacher (without watermark), so it predicts the
    # watermarked text as well as possible; the texts depend on each trial's key.
    rng = np.random.default_rng(11)
    probs = teacher_probs(teacher)
    trials, logs = 150, []
    for _ in range(trials):
        scheme = build(name, SecretKey(rng.bytes(32)))
        texts = teacher.generate(rng.integers(0, VOCAB, (6, 2)), 40, rng, scheme=scheme)
        logs.append(reading_test(scheme, items_from(probs, texts), statistic=statistic).log10_p_value)
    arr = np.array(logs)
    for a in (0.01, 0.05):
        assert np.mean(arr <= math.log10(a)) <= fpr_upper_bound(trials, a)


def copying_items(teacher: MarkovTeacher, texts: np.ndarray, k: int = 8) -> list[ReadingItem]:
    """A clean suspect that, like a transformer, copies: after a token it saw earlier in the
    text, it predicts what followed it then; otherwise it predicts like our own model."""
    probs = teacher_probs(teacher)
    items = []
    for t in texts:
        rows = []
        for j in range(t.size):
            p = probs(int(t[j]))
            earlier = np.flatnonzero(t[:j] == t[j])
            if earlier.size:
                p = 0.1 * p
                p[int(t[earlier[-1] + 1])] += 0.9
            rows.append(p)
        pm = np.stack(rows)
        top = np.argsort(-pm, axis=1)[:, :k]
        items.append(ReadingItem(t, top, np.take_along_axis(pm, top, axis=1)))
    return items


def test_copying_clean_model_is_only_safe_with_first_occurrence_dedup(teacher) -> None:
    rng = np.random.default_rng(5)
    trials, with_dedup, without = 60, [], []
    for _ in range(trials):
        scheme = build("kgw", SecretKey(rng.bytes(32)))
        texts = teacher.generate(rng.integers(0, VOCAB, (4, 2)), 80, rng, scheme=scheme)
        items = copying_items(teacher, texts)
        with_dedup.append(reading_test(scheme, items, statistic="top1").log10_p_value)
        without.append(reading_test(scheme, items, statistic="top1", dedup=False).log10_p_value)
    assert np.mean(np.array(with_dedup) <= -2) <= fpr_upper_bound(trials, 0.01)
    assert np.mean(np.array(without) <= -2) > fpr_upper_bound(trials, 0.01)


@pytest.mark.parametrize("statistic", ["top1", "mass"])
def test_distilled_student_reads_our_watermark(statistic: str, teacher, key: SecretKey, rng) -> None:
    scheme = build("kgw", key)
    student = distilled_student(teacher, scheme, rng, n=300)
    fresh = teacher.generate(rng.integers(0, VOCAB, (40, 2)), 60, rng, scheme=scheme)
    res = reading_test(scheme, items_from(lambda x: student.next_probs([x]), fresh), statistic=statistic)
    assert res.radioactive and res.log10_p_value < -6
    assert res.exact == (statistic == "top1")
    clean = CountStudent(VOCAB, order=1, smoothing=0.01).fit(
        list(teacher.generate(rng.integers(0, VOCAB, (300, 2)), 100, rng))
    )
    res0 = reading_test(scheme, items_from(lambda x: clean.next_probs([x]), fresh), statistic=statistic)
    assert res0.log10_p_value > -3


def test_contexts_are_scored_once(key: SecretKey, teacher, rng) -> None:
    scheme = build("kgw", key)
    text = teacher.generate(rng.integers(0, VOCAB, (1, 2)), 50, rng, scheme=scheme)
    items = items_from(teacher_probs(teacher), np.concatenate([text, text]))
    res = reading_test(scheme, items)
    assert res.n_positions == 2 * 49 and res.n_contexts == len(set(text[0][:-1].tolist()))


def test_reading_refuses_bad_input(key: SecretKey) -> None:
    scheme = build("kgw", key)
    with pytest.raises(InputError):
        ReadingItem(np.arange(5), np.zeros((4, 3), dtype=np.int64), np.zeros((4, 3)))
    with pytest.raises(InputError):
        ReadingItem(np.arange(3), np.zeros((3, 2), dtype=np.int64), np.full((3, 2), np.nan))
    item = ReadingItem(np.arange(3), np.zeros((3, 2), dtype=np.int64), np.ones((3, 2)))
    with pytest.raises(ConfigError):
        reading_test(scheme, [item], statistic="median")
    with pytest.raises(ConfigError):
        reading_test(build("kgw", key, payload_bits=32), [item])
    with pytest.raises(InputError):
        reading_test(scheme, [ReadingItem(np.arange(1), np.zeros((1, 2), np.int64), np.ones((1, 2)))])
