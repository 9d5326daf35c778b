"""Contamination at scale: the bundle, the corpora's fractions, and the run end to end (stand-in
teacher, tiny students, CPU)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.lab.contamination import (
    ContaminationBundle,
    ContaminationConfig,
    contamination_corpus,
    run_contamination,
)
from distillguard.lab.student import StudentConfig
from distillguard.watermark import KGW, KGWConfig, SecretKey

KEY = SecretKey(bytes(range(32)))
TOY = KGWConfig(context_width=1, delta=3.0)  # the stand-in's 48-token language needs width 1


@pytest.fixture
def trainable_scheme() -> KGW:
    """The toy scheme, for the tests that train students (they need torch and transformers)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return KGW(TOY, KEY)


def _bundle(n_wm: int = 120, n_human: int = 600, *, key: SecretKey = KEY) -> ContaminationBundle:
    """Watermarked answers from the stand-in teacher, and its unwatermarked text as the "human"
    part (the strictest control: same language, no watermark)."""
    from tests.lab.stand_in import Teacher

    scheme = KGW(TOY, key)
    prompts = [f"prompt number {i}" for i in range(n_wm + n_human + 40)]
    teacher = Teacher()
    tok = teacher.tokenizer

    def ids(ps: list[str]) -> tuple[np.ndarray, ...]:
        chats = ([{"role": "user", "content": p}] for p in ps)
        return tuple(np.asarray(tok.apply_chat_template(c), np.int64) for c in chats)

    def answers(t: Teacher, ps: list[str], seed: int) -> tuple[np.ndarray, ...]:
        gens = t.generate(ps, [None] * len(ps), max_new_tokens=40, temperature=0.8, seed=seed, batch_size=64)
        return tuple(np.asarray(g.token_ids, np.int64) for g in gens)

    wm_p = prompts[:n_wm]
    human_p = prompts[n_wm : n_wm + n_human]
    wm_prompts = ids(wm_p)
    human = tuple(
        np.concatenate([p, a]) for p, a in zip(ids(human_p), answers(teacher, human_p, 7), strict=True)
    )
    return ContaminationBundle(
        wm_prompts=wm_prompts,
        wm_answers=answers(teacher.with_scheme(scheme), wm_p, 0),
        human=human,
        held_out=ids(prompts[n_wm + n_human :]),
        meta={"key_id": scheme.keyring.primary.key_id, "scheme": "kgw"},
    )


def test_bundle_round_trips_through_its_file(tmp_path) -> None:
    b = _bundle(20, 30)
    path = b.save(tmp_path / "b.npz")
    again = ContaminationBundle.load(path)
    assert again.meta == b.meta and again.wm_tokens == b.wm_tokens and again.human_tokens == b.human_tokens
    for name in ("wm_prompts", "wm_answers", "human", "held_out"):
        assert all(np.array_equal(x, y) for x, y in zip(getattr(b, name), getattr(again, name), strict=True))


def test_bundle_errors_say_what_is_wrong(tmp_path) -> None:
    with pytest.raises(InputError, match="No contamination bundle"):
        ContaminationBundle.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a contamination bundle"):
        ContaminationBundle.load(tmp_path / "junk.npz")
    one = (np.arange(3),)
    with pytest.raises(InputError, match="one prompt per watermarked answer"):
        ContaminationBundle(one, one + one, one, one)
    with pytest.raises(InputError, match="non-empty 'human'"):
        ContaminationBundle(one, one, (), one)


@pytest.mark.parametrize("fraction", [0.5, 0.2, 0.05])
def test_corpus_holds_the_asked_fraction_of_answer_tokens(fraction: float) -> None:
    b = _bundle(40, 600)
    c = contamination_corpus(b, fraction)
    total = sum(s.size for s in c.wm_pairs) + sum(h.size for h in c.human)
    # within one human text of the target
    assert c.wm_tokens / total == pytest.approx(fraction, rel=0.15)
    assert c.wm_tokens <= b.wm_tokens and c.human == list(b.human[: len(c.human)])
    # harvest_indices name exactly the pairs the corpus holds, in its order
    assert len(set(c.harvest_indices)) == len(c.harvest_indices) == len(c.wm_pairs)
    for i, pair in zip(c.harvest_indices, c.wm_pairs, strict=True):
        assert np.array_equal(pair, np.concatenate([b.wm_prompts[i], b.wm_answers[i]]))
    assert c.wm_tokens == sum(b.wm_answers[i].size for i in c.harvest_indices)


def test_corpus_cap_keeps_the_fraction_with_less_of_the_harvest() -> None:
    b = _bundle(120, 600)
    c = contamination_corpus(b, 0.2, max_tokens=3000)
    total = sum(s.size for s in c.wm_pairs) + sum(h.size for h in c.human)
    assert c.wm_tokens <= 0.2 * 3000 and total <= 3000 * 1.1
    assert c.wm_tokens / total == pytest.approx(0.2, rel=0.15)
    assert len(c.harvest_indices) < len(b.wm_answers)  # a random part of the harvest


def test_corpus_cuts_the_harvest_when_human_text_runs_short() -> None:
    b = _bundle(120, 60)
    c = contamination_corpus(b, 0.01)
    assert c.wm_tokens < b.wm_tokens / 10  # scaled down, so the fraction still holds
    assert len(c.human) == len(b.human)


def test_config_validates() -> None:
    with pytest.raises(ConfigError, match="control_fraction"):
        ContaminationConfig(fractions=(0.1,), control_fraction=0.05)
    with pytest.raises(ConfigError, match="fractions"):
        ContaminationConfig(fractions=(1.5,), control_fraction=1.5)
    with pytest.raises(ConfigError, match="n_queries"):
        ContaminationConfig(n_queries=0)
    with pytest.raises(ConfigError, match="vocab_min_count"):
        ContaminationConfig(vocab_min_count=0)
    with pytest.raises(ConfigError, match="max_train_tokens"):
        ContaminationConfig(max_train_tokens=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="device"):
        StudentConfig(device="gpu")


def test_key_mismatch_is_refused() -> None:
    other = KGW(TOY, SecretKey(bytes(range(1, 33))))
    with pytest.raises(ConfigError, match="harvested under key"):
        run_contamination(_bundle(10, 20), other, log=lambda m: None)


@pytest.mark.slow
def test_run_separates_contaminated_students_from_the_control(trainable_scheme: KGW) -> None:
    scheme = trainable_scheme
    cfg = ContaminationConfig(
        fractions=(0.5,),
        control_fraction=0.5,
        epochs=2.0,
        min_steps=120,
        student=StudentConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, lr=1e-2, batch_size=16),
        n_queries=30,
        max_new_tokens=40,
        suspect_temperature=0.8,  # the 48-token stand-in language repeats itself when sampled cooler
        reading_texts=40,
        n_controls=20,
    )
    seen: list[str] = []
    bundle = _bundle()
    res = run_contamination(bundle, scheme, cfg, log=lambda m: None,
                            on_student=lambda row, ans: seen.append(row.name) or None)
    by = {s.name: s for s in res.students}
    assert seen == ["distilled", "human-control", "contaminated-50%"] == list(by)
    distilled = by["distilled"]
    assert distilled.radioactivity.log10_p_value < -4 and distilled.watermarked_tokens == bundle.wm_tokens
    assert distilled.fraction == distilled.watermarked_tokens / distilled.train_tokens  # prompts count too
    assert by["contaminated-50%"].fraction == pytest.approx(0.5, rel=0.15)
    assert by["contaminated-50%"].reading.log10_p_value < -3
    # reading only the texts it trained on (the toy language has few contexts: both runs see all)
    trained = by["contaminated-50%"].reading_trained
    assert trained is not None and trained.n_contexts <= by["contaminated-50%"].reading.n_contexts
    assert trained.log10_p_value < -3
    control = by["human-control"]
    assert control.watermarked_tokens == 0 and control.fraction == 0.0
    assert control.radioactivity.log10_p_value > -3 and control.reading.log10_p_value > -3
    assert control.reading_trained is not None and control.reading_trained.log10_p_value > -3
    assert res.controls is not None and res.controls.passed and res.controls.n_keys == 20
    assert res.skipped == () and res.n_trained_params == res.n_params > 0  # from scratch: all trained


@pytest.mark.slow
def test_time_budget_skips_later_students_and_says_so(trainable_scheme: KGW) -> None:
    scheme = trainable_scheme
    cfg = ContaminationConfig(
        fractions=(0.5,), control_fraction=0.5, min_steps=5, n_queries=5, max_new_tokens=8,
        student=StudentConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, seq_len=32),
        reading_texts=5, n_controls=5, time_budget_s=1e-9,
    )
    res = run_contamination(_bundle(20, 40), scheme, cfg, log=lambda m: None)
    assert res.students == () and res.skipped == ("distilled", "human-control", "contaminated-50%")
    assert res.controls is None


@pytest.mark.slow
def test_a_student_trained_alone_is_the_one_the_full_run_trains(trainable_scheme: KGW) -> None:
    cfg = ContaminationConfig(
        fractions=(0.5,), control_fraction=0.5, min_steps=5, n_queries=5, max_new_tokens=8,
        student=StudentConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, seq_len=32),
        reading_texts=5, n_controls=5,
    )
    bundle = _bundle(20, 40)
    full = {s.name: s for s in run_contamination(bundle, trainable_scheme, cfg, log=lambda m: None).students}
    alone = run_contamination(
        bundle, trainable_scheme, replace(cfg, students=("contaminated-50%",)), log=lambda m: None
    )
    (row,) = alone.students
    assert row.name == "contaminated-50%" and alone.controls is None  # no distilled answers to rerun
    assert row.final_loss == full[row.name].final_loss
    assert row.reading.log10_p_value == full[row.name].reading.log10_p_value
    with pytest.raises(ConfigError, match="does not have"):
        run_contamination(bundle, trainable_scheme, replace(cfg, students=("contaminated-7%",)),
                          log=lambda m: None)


@pytest.mark.slow
@pytest.mark.model
def test_contrast_reading_against_smollm2_keeps_the_control_null(trainable_scheme: KGW) -> None:
    # SmolLM2 knows nothing of the stand-in's language: a poor reference (it costs power), but a
    # key-independent one, so the human-control's contrast and its never-used keys stay null.
    cfg = ContaminationConfig(
        fractions=(0.5,), control_fraction=0.5, epochs=2.0, min_steps=120,
        student=StudentConfig(d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, lr=1e-2, batch_size=16),
        n_queries=5, max_new_tokens=8, reading_texts=40, n_controls=20,
        students=("human-control", "contaminated-50%"), reading_reference=True,
    )
    res = run_contamination(_bundle(), trainable_scheme, cfg, log=lambda m: None)
    by = {s.name: s for s in res.students}
    tainted, control = by["contaminated-50%"], by["human-control"]
    for row in (tainted, control):
        assert row.contrast is not None and row.contrast.statistic == "contrast"
        assert row.contrast.n_contexts == row.reading.n_contexts  # the same contexts, first occurrences
        assert row.contrast_controls is not None and row.contrast_controls.passed
    assert tainted.contrast_trained is not None and tainted.contrast_trained.log10_p_value < -3
    assert control.contrast_trained is not None and control.contrast_trained.log10_p_value > -3
