"""Edit attacks: rates are honoured, seeds replay, the pasted passage is where we say it is."""

from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import ConfigError, InputError
from distillguard.watermark.attacks import (
    EditAttack,
    delete_words,
    insert_words,
    paste_into,
    substitute_words,
    truncate_words,
)

TEXT = " ".join(f"w{i}" for i in range(2000))
VOCAB = ["alpha", "beta", "gamma"]


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_edit_rates_within_binomial_bounds(rate: float) -> None:
    n = 2000
    sd = (n * rate * (1 - rate)) ** 0.5
    kept = len(delete_words(TEXT, rate, np.random.default_rng(0)).split())
    assert abs((n - kept) - n * rate) < 4 * sd
    subbed = substitute_words(TEXT, rate, np.random.default_rng(1), VOCAB).split()
    assert abs(sum(w in VOCAB for w in subbed) - n * rate) < 4 * sd
    grown = len(insert_words(TEXT, rate, np.random.default_rng(2), VOCAB).split())
    assert abs((grown - n) - n * rate) < 4 * sd


def test_same_seed_same_edit_and_zero_rate_is_identity() -> None:
    a = EditAttack("substitute", 0.2)
    assert a.apply(TEXT, np.random.default_rng(5), VOCAB) == a.apply(TEXT, np.random.default_rng(5), VOCAB)
    assert delete_words(TEXT, 0.0, np.random.default_rng(0)) == TEXT
    assert a.name == "substitute 20%"


def test_paste_places_the_passage_at_the_reported_offsets() -> None:
    human = " ".join(["human"] * 3000)
    passage = "WATERMARKED " * 50
    for fraction in (0.1, 0.25, 0.5):
        p = paste_into(human, passage.strip(), fraction, np.random.default_rng(3))
        assert p.text[p.start_char:p.end_char] == passage.strip()
        assert abs(p.fraction - fraction) < 0.02
    with pytest.raises(InputError, match="characters"):
        paste_into("too short", passage, 0.1, np.random.default_rng(0))


def test_bad_settings_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="rate"):
        EditAttack("delete", 1.5)
    with pytest.raises(ConfigError, match="kind"):
        EditAttack("shuffle", 0.1)
    with pytest.raises(InputError, match="vocabulary"):
        substitute_words(TEXT, 0.1, np.random.default_rng(0), [])
    assert truncate_words("a b c d", 2) == "a b"
