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


def clean_base(teacher: MarkovTeacher, rng: np.random.Generator, n: int = 300) -> CountStudent:
    """A key-independent model of the teacher's language: the reference of the contrast test."""
    return CountStudent(VOCAB, order=1, smoothing=0.01).fit(
        list(teacher.generate(rng.integers(0, VOCAB, (n, 2)), 100, rng))
    )


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_contrast_null_holds_for_clean_suspects(name: str, teacher) -> None:
    # Two clean suspects read against a clean base: our own model (the closest a clean model can
    # be to the texts) and the base fine-tuned on more clean text (what an innocent fine-tune does).
    rng = np.random.default_rng(5)
    base = clean_base(teacher, rng)
    tuned = CountStudent(VOCAB, order=1, smoothing=0.01).fit(
        list(teacher.generate(rng.integers(0, VOCAB, (330, 2)), 100, rng))
    )
    trials, logs = 150, {"ours": [], "tuned": []}
    for _ in range(trials):
        scheme = build(name, SecretKey(rng.bytes(32)))
        texts = teacher.generate(rng.integers(0, VOCAB, (6, 2)), 40, rng, scheme=scheme)
        ref = items_from(lambda x: base.next_probs([x]), texts)
        for label, probs_of in (("ours", teacher_probs(teacher)), ("tuned", lambda x: tuned.next_probs([x]))):
            res = reading_test(scheme, items_from(probs_of, texts), statistic="contrast", reference=ref)
            logs[label].append(res.log10_p_value)
            assert abs(res.expected) < 1e-9 and not res.exact  # weights of each context sum to 0
    for arr in map(np.array, logs.values()):
        for a in (0.01, 0.05, 0.2):
            assert np.mean(arr <= math.log10(a)) <= fpr_upper_bound(trials, a)


def test_contrast_finds_a_lightly_contaminated_fine_tune(teacher, key: SecretKey) -> None:
    # A base fine-tuned on 1,000 clean answers and 5 of ours (0.5 %), read on those 5: the
    # base's own preferences (green or red by chance) drown the shift in the mass statistic;
    # subtracting the base leaves the shift, which points at the tokens our watermark chose.
    rng = np.random.default_rng(3)
    scheme = build("kgw", key)
    clean = list(teacher.generate(rng.integers(0, VOCAB, (1000, 2)), 100, rng))
    base = CountStudent(VOCAB, order=1, smoothing=0.01).fit(clean)
    ours = teacher.generate(rng.integers(0, VOCAB, (5, 2)), 100, rng, scheme=scheme)
    tuned = CountStudent(VOCAB, order=1, smoothing=0.01).fit(clean + list(ours) * 3)
    items = items_from(lambda x: tuned.next_probs([x]), ours)
    ref = items_from(lambda x: base.next_probs([x]), ours)
    mass = reading_test(scheme, items).log10_p_value
    contrast = reading_test(scheme, items, statistic="contrast", reference=ref)
    assert contrast.radioactive and contrast.log10_p_value < min(-6.0, mass - 10.0)
    # the same fine-tune read under a never-used key: nothing
    other = build("kgw", SecretKey(bytes(range(1, 33))))
    assert reading_test(other, items, statistic="contrast", reference=ref).log10_p_value > -2


def test_contrast_refuses_a_missing_or_mismatched_reference(key: SecretKey, teacher, rng) -> None:
    scheme = build("kgw", key)
    texts = teacher.generate(rng.integers(0, VOCAB, (2, 2)), 20, rng, scheme=scheme)
    items = items_from(teacher_probs(teacher), texts)
    with pytest.raises(ConfigError, match="reference"):
        reading_test(scheme, items, statistic="contrast")
    with pytest.raises(ConfigError, match="reference"):
        reading_test(scheme, items, statistic="mass", reference=items)
    with pytest.raises(InputError, match="same texts"):
        reading_test(scheme, items, statistic="contrast", reference=items[:1])
    with pytest.raises(InputError, match="other tokens"):
        reading_test(scheme, items, statistic="contrast", reference=items[::-1])
    same = reading_test(scheme, items, statistic="contrast", reference=items)
    assert same.score == 0.0 and same.p_value == 1.0  # a suspect that is its reference moved nothing
