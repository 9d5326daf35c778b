"""Black-box radioactivity test: exact null with dedup (also under repeated prompts), power."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from distillguard.errors import ConfigError, InputError
from distillguard.provenance import ContextFilter, fpr_upper_bound, radioactivity_test
from distillguard.provenance.simulate import MarkovTeacher
from distillguard.watermark import KeyRing, SecretKey

from .conftest import VOCAB, build, distilled_student

ALPHAS = (0.01, 0.05)


def repetitive_answers(rng: np.random.Generator, *, repeats: int, n_prompts: int = 20) -> list[np.ndarray]:
    """A low-entropy clean model asked each prompt ``repeats`` times: answers repeat a lot."""
    sharp = MarkovTeacher(VOCAB, rng, scale=6.0)
    prompts = np.repeat(rng.integers(0, VOCAB, (n_prompts, 2)), repeats, axis=0)
    return list(sharp.generate(prompts, 60, rng))


def null_log10_p(name: str, answers: list[np.ndarray], rng: np.random.Generator, n_keys: int, dedup: bool):
    # The answers do not depend on the key, so p-values under fresh keys are null draws.
    return np.array(
        [
            radioactivity_test(
                build(name, SecretKey(rng.bytes(32))), answers, dedup=dedup, curve_points=0
            ).log10_p_value
            for _ in range(n_keys)
        ]
    )


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_null_fpr_within_binomial_bound_with_repeated_prompts(name: str, rng: np.random.Generator) -> None:
    n_keys = 1000
    logs = null_log10_p(name, repetitive_answers(rng, repeats=5), rng, n_keys, dedup=True)
    for a in ALPHAS:
        assert np.mean(logs <= math.log10(a)) <= fpr_upper_bound(n_keys, a)
    if name == "gumbel":  # continuous statistic: p-values are uniform, not just conservative
        assert sps.kstest(10.0**logs, "uniform").pvalue > 1e-3


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_without_dedup_repeated_prompts_make_a_clean_model_look_radioactive(
    name: str, rng: np.random.Generator
) -> None:
    n_keys = 200
    logs = null_log10_p(name, repetitive_answers(rng, repeats=5), rng, n_keys, dedup=False)
    assert np.mean(logs <= math.log10(0.05)) > fpr_upper_bound(n_keys, 0.05)


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_distilled_student_is_radioactive_and_clean_student_is_not(
    name: str, key: SecretKey, teacher, rng: np.random.Generator
) -> None:
    scheme = build(name, key)
    student = distilled_student(teacher, scheme, rng)
    answers = list(student.generate(rng.integers(0, VOCAB, (100, 2)), 100, rng))
    res = radioactivity_test(scheme, answers)
    assert res.radioactive and res.log10_p_value < -6
    assert res.key_id == key.key_id and res.n_answers == 100 and res.n_scored <= res.n_raw
    clean = list(teacher.generate(rng.integers(0, VOCAB, (100, 2)), 100, rng))
    assert radioactivity_test(scheme, clean).log10_p_value > -3


def test_curve_accumulates_queries(key: SecretKey, teacher, rng: np.random.Generator) -> None:
    scheme = build("kgw", key)
    student = distilled_student(teacher, scheme, rng)
    answers = list(student.generate(rng.integers(0, VOCAB, (60, 2)), 80, rng))
    res = radioactivity_test(scheme, answers, curve_points=10)
    qs = [c.n_queries for c in res.curve]
    assert qs == sorted(qs) and qs[-1] == 60 and qs[0] == 1
    assert [c.n_scored for c in res.curve] == sorted(c.n_scored for c in res.curve)
    assert res.curve[-1].n_scored == res.n_scored
    assert res.curve[-1].log10_p_value == pytest.approx(res.log10_p_value)
    assert res.curve[-1].log10_p_value < res.curve[0].log10_p_value
    assert res.curve[-1].n_tokens == 60 * 80
    # requested points are added, and each equals the test run on that prefix of the answers
    at = radioactivity_test(scheme, answers, curve_points=0, curve_at=(10, 30, 100))
    # with the any-look p-value's looks (powers of two) up to the largest requested count
    assert [c.n_queries for c in at.curve] == [1, 2, 4, 8, 10, 16, 30]
    for c in at.curve:
        assert c.log10_p_value == pytest.approx(
            radioactivity_test(scheme, answers[: c.n_queries], curve_points=0).log10_p_value
        )


def test_keyring_is_sidak_corrected(key: SecretKey, teacher, rng: np.random.Generator) -> None:
    scheme = build("kgw", key)
    answers = list(distilled_student(teacher, scheme, rng).generate(rng.integers(0, VOCAB, (50, 2)), 80, rng))
    single = radioactivity_test(scheme, answers)
    other = SecretKey(bytes(range(100, 132)))
    ring = radioactivity_test(build("kgw", KeyRing([other, key])), answers)
    assert ring.key_id == key.key_id
    assert ring.log10_p_value == pytest.approx(single.log10_p_value + math.log10(2), abs=1e-6)
    assert "sidak over 2 keys" in ring.correction


def test_payload_schemes_detect_without_knowing_the_account(
    key: SecretKey, teacher, rng: np.random.Generator
) -> None:
    for name in ("kgw", "gumbel"):
        scheme = build(name, key, payload_bits=32)
        student = distilled_student(teacher, scheme, rng, payloads=[4242] * 200)
        answers = list(student.generate(rng.integers(0, VOCAB, (80, 2)), 100, rng))
        assert radioactivity_test(scheme, answers).log10_p_value < -6, name


def test_context_filter_keeps_only_served_contexts(key: SecretKey, teacher, rng: np.random.Generator) -> None:
    scheme = build("kgw", key, context_width=2)
    served = list(teacher.generate(rng.integers(0, VOCAB, (30, 2)), 50, rng, scheme=scheme))
    filt = ContextFilter.from_served(key, 2, served)
    assert 0 < filt.size <= 30 * 48
    answers = list(teacher.generate(rng.integers(0, VOCAB, (30, 2)), 50, rng))
    plain = radioactivity_test(scheme, answers)
    filtered = radioactivity_test(scheme, answers, context_filters=filt)
    assert filtered.filtered and filtered.n_scored < plain.n_scored
    assert filtered.n_after_dedup == plain.n_scored
    # every kept tuple's context was served
    assert "filter" in filtered.null
    with pytest.raises(InputError):
        radioactivity_test(
            scheme,
            answers,
            context_filters=ContextFilter.from_served(SecretKey(bytes(range(1, 33))), 2, served),
        )
    with pytest.raises(InputError):
        radioactivity_test(build("kgw", key, context_width=1), answers, context_filters=filt)


def test_bad_input_is_refused(key: SecretKey) -> None:
    scheme = build("kgw", key)
    with pytest.raises(ConfigError):
        radioactivity_test(scheme, [[1, 2, 3]], alpha=0.0)
    with pytest.raises(InputError):
        radioactivity_test(scheme, [[[1, 2], [3, 4]]])  # type: ignore[list-item]
    with pytest.raises(InputError):
        radioactivity_test(scheme, [[-1, 2, 3]])
    res = radioactivity_test(scheme, [])
    assert res.n_scored == 0 and not res.radioactive and res.p_value == 1.0


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_one_answer_matches_the_single_text_detector(name: str, key: SecretKey, teacher, rng) -> None:
    scheme = build(name, key, context_width=2)
    text = teacher.generate(rng.integers(0, VOCAB, (1, 2)), 150, rng, scheme=scheme)[0]
    det = scheme.detect(text)
    res = radioactivity_test(scheme, [text[:70], text[70:]])
    # two answers lose the tuples whose context straddles the cut; one answer matches exactly
    assert res.n_raw == 150 - 2 * 2
    one = radioactivity_test(scheme, [text])
    assert (one.n_scored, one.score) == (det.n_scored, pytest.approx(det.score))
    assert one.log10_p_value == pytest.approx(det.log10_p_value)


def test_anchor_slots_keep_a_many_account_mix_radioactive(key: SecretKey, teacher) -> None:
    # Forty accounts harvest five answers each: their payloads disagree on every chunk, so a
    # student of the mix learns no colour there; the anchor slots' colour is the same for all.
    from distillguard.provenance.tracing import trace_accounts
    from distillguard.watermark.payload import account_id

    accounts = [f"acct-{i}" for i in range(2000)]
    payloads = [account_id(key, a) for a in accounts[:40] for _ in range(5)]
    logs = {}
    for anchors in (0, 8):
        rng = np.random.default_rng(1)
        scheme = build("kgw", key, payload_bits=32, anchor_chunks=anchors)
        student = distilled_student(teacher, scheme, rng, n=len(payloads), payloads=payloads)
        answers = list(student.generate(rng.integers(0, VOCAB, (80, 2)), 100, rng))
        res = radioactivity_test(scheme, answers, curve_points=0)
        logs[anchors] = res
        assert set(trace_accounts(scheme, answers, accounts).named) <= set(accounts[:40])
    assert logs[0].log10_p_value > -3 and logs[0].details["anchor_tuples"] == 0
    assert logs[8].radioactive and logs[8].details["anchor_log10_p_value"] < -20
    assert logs[8].log10_p_value <= logs[8].details["all_tuples_log10_p_value"] + math.log10(2) + 1e-9


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_null_fpr_with_payload_and_anchor_slots(name: str, rng: np.random.Generator) -> None:
    # The audit's p-value with anchors is the smaller of two exact p-values ×2: still valid.
    answers = repetitive_answers(rng, repeats=3)
    n_keys = 300
    logs = np.array([
        radioactivity_test(
            build(name, SecretKey(rng.bytes(32)), payload_bits=32, anchor_chunks=8), answers, curve_points=0
        ).log10_p_value
        for _ in range(n_keys)
    ])
    for a in ALPHAS:
        assert np.mean(logs <= math.log10(a)) <= fpr_upper_bound(n_keys, a)


@pytest.mark.parametrize("name", ["kgw", "gumbel"])
def test_any_look_p_value_survives_optional_stopping(name: str, rng: np.random.Generator) -> None:
    # An auditor who watches the curve and stops as soon as it crosses α: with the fixed-count
    # p-value, a clean suspect is called radioactive far more often than α; with the any-look
    # p-value, within α whatever the stopping rule.
    teacher = MarkovTeacher(VOCAB, rng, scale=1.0)
    answers = list(teacher.generate(rng.integers(0, VOCAB, (256, 2)), 12, rng))
    n_keys, a = 300, 0.05
    fixed, any_look = [], []
    for _ in range(n_keys):
        res = radioactivity_test(build(name, SecretKey(rng.bytes(32))), answers, curve_points=24)
        fixed.append(min(c.log10_p_value for c in res.curve))
        any_look.append(min(c.log10_p_any_look for c in res.curve))
        assert res.any_look_log10_p_value == res.curve[-1].log10_p_any_look
        # never below the smallest fixed-count p-value seen so far: looking has a price
        seen = np.minimum.accumulate([c.log10_p_value for c in res.curve])
        assert all(c.log10_p_any_look >= s for c, s in zip(res.curve, seen, strict=True))
    assert np.mean(np.array(fixed) <= math.log10(a)) > fpr_upper_bound(n_keys, a)
    assert np.mean(np.array(any_look) <= math.log10(a)) <= fpr_upper_bound(n_keys, a)


def test_any_look_p_value_is_the_smallest_spent_look(
    key: SecretKey, teacher, rng: np.random.Generator
) -> None:
    scheme = build("kgw", key)
    answers = list(distilled_student(teacher, scheme, rng).generate(rng.integers(0, VOCAB, (40, 2)), 60, rng))
    res = radioactivity_test(scheme, answers, curve_points=5)
    looks = {c.n_queries: c.log10_p_value for c in res.curve if c.n_queries & (c.n_queries - 1) == 0}
    assert sorted(looks) == [1, 2, 4, 8, 16, 32]
    spent = [min(0.0, lp + math.log10(math.pi**2 * (j + 1) ** 2 / 6)) for j, lp in enumerate(looks.values())]
    assert res.any_look_log10_p_value == pytest.approx(min(spent))
    assert res.any_look_log10_p_value > res.log10_p_value  # the price of looking, here
    assert radioactivity_test(scheme, answers, curve_points=0).any_look_log10_p_value is None
