import numpy as np
import pytest

from distillguard.errors import InputError
from distillguard.intel.pseudonym import CoalitionKey
from distillguard.intel.templates import extract_templates, jaccard, minhash, normalise_prompt

K = CoalitionKey("fmf", 1, b"k" * 32)
TOPICS = ["volcanoes", "jazz harmony", "the krebs cycle", "sql joins", "game theory", "black holes"]


def test_normalise():
    assert normalise_prompt('Ticket 12345: "it broke"!') == "ticket # q"


def test_frame_kept_slot_dropped():
    ts = extract_templates([f"Provide a detailed tutorial on {t}." for t in TOPICS])
    assert len(ts) == 1 and ts[0].uses == len(TOPICS)
    words = " ".join(ts[0].shingles)
    assert "tutorial" in words
    assert not any(w in words for w in ("volcanoes", "jazz", "krebs", "joins"))


def test_no_template_from_unrelated_prompts():
    prompts = [
        "How do I bake bread at home?",
        "What is the capital of Peru today?",
        "Tell a joke about cats please",
    ]
    assert extract_templates(prompts) == []


def test_minhash_estimates_jaccard(rng):
    vocab = [f"w{i}" for i in range(400)]
    for _ in range(5):
        a = set(rng.choice(vocab, 60, replace=False))
        b = set(list(a)[:40]) | set(rng.choice(vocab, 20, replace=False))
        exact = len(a & b) / len(a | b)
        est = jaccard(minhash(a, K), minhash(b, K))
        # 128 permutations: sd = sqrt(J(1-J)/128) <= 0.045; 5 sd
        assert abs(est - exact) <= 5 * np.sqrt(exact * (1 - exact) / 128) + 1e-9


def test_minhash_is_keyed():
    s = {"a b c", "b c d", "c d e"}
    other = CoalitionKey("fmf", 1, b"z" * 32)
    assert minhash(s, K) == minhash(s, K)
    assert jaccard(minhash(s, K), minhash(s, other)) < 0.2


def test_errors():
    with pytest.raises(InputError):
        minhash(set(), K)
    with pytest.raises(InputError):
        jaccard([1, 2], [1])
