"""Report rendering, verdict rules, and null controls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from distillguard.errors import ConfigError
from distillguard.provenance import build_report, curve_svg, null_controls, radioactivity_test
from distillguard.provenance.simulate import MarkovTeacher
from distillguard.watermark import SecretKey

from .conftest import VOCAB, build, distilled_student


@pytest.fixture
def radioactive_result(key: SecretKey, teacher, rng):
    scheme = build("kgw", key)
    answers = list(distilled_student(teacher, scheme, rng).generate(rng.integers(0, VOCAB, (60, 2)), 80, rng))
    return scheme, answers, radioactivity_test(scheme, answers)


def test_report_renders_json_markdown_html_without_the_key(radioactive_result, key: SecretKey, rng) -> None:
    _scheme, answers, res = radioactive_result
    controls = null_controls(
        lambda k: build("kgw", k),
        lambda s: radioactivity_test(s, answers, curve_points=0).log10_p_value,
        rng,
        n_keys=50,
    )
    rep = build_report(
        suspect="http://suspect/v1",
        scheme="kgw",
        key_id=key.key_id,
        alpha=1e-6,
        radioactivity=res,
        controls=controls,
        settings={"queries": 60},
        commands=("distillguard audit ...",),
    )
    assert rep.verdict == "radioactive" and controls.passed
    doc = json.loads(rep.to_json())
    assert doc["key_id"] == key.key_id and doc["radioactivity"]["n_scored"] == res.n_scored
    for text in (rep.to_json(), rep.to_markdown(), rep.to_html()):
        assert key.hex() not in text
    html = rep.to_html()
    assert "<svg" in html and "polyline" in html and "radioactive" in html
    md = rep.to_markdown()
    assert "**Verdict: radioactive**" in md and "Null controls" in md and "distillguard audit ..." in md


def test_failed_controls_make_the_verdict_inconclusive(rng) -> None:
    # Dedup off + a model that repeats itself: controls under fresh keys catch the broken procedure.
    sharp = MarkovTeacher(VOCAB, rng, scale=6.0)
    answers = list(sharp.generate(np.repeat(rng.integers(0, VOCAB, (20, 2)), 5, axis=0), 60, rng))
    audit = lambda s: radioactivity_test(s, answers, dedup=False, curve_points=0).log10_p_value  # noqa: E731
    controls = null_controls(lambda k: build("kgw", k), audit, rng, n_keys=100)
    assert not controls.passed
    res = radioactivity_test(build("kgw", SecretKey(bytes(32))), answers, dedup=False)
    rep = build_report(
        suspect="x", scheme="kgw", key_id="k", alpha=0.05, radioactivity=res, controls=controls
    )
    assert rep.verdict == "inconclusive"
    assert any("Dedup was off" in n for n in rep.notes)


def test_clean_suspect_is_not_radioactive(key: SecretKey, teacher, rng) -> None:
    answers = list(teacher.generate(rng.integers(0, VOCAB, (40, 2)), 80, rng))
    rep = build_report(
        suspect="x",
        scheme="kgw",
        key_id=key.key_id,
        alpha=1e-6,
        radioactivity=radioactivity_test(build("kgw", key), answers),
    )
    assert rep.verdict == "not radioactive"


def test_curve_svg_handles_empty_and_extreme_values() -> None:
    assert "no curve" in curve_svg((), alpha=0.01)
    with pytest.raises(ConfigError):
        null_controls(lambda k: build("kgw", k), lambda s: 0.0, np.random.default_rng(0), n_keys=0)
