"""Fixtures for the command-line tests: key files, and watermarked text made without the model.

``watermarked_text`` samples SmolLM2 token ids from random logits restricted to ~21k
lower-case whole-word tokens (" word"), runs them through the scheme's ``process`` and decodes
them. Such text re-tokenises to exactly the same ids, so detection from the *text* sees the
watermark the ids carry — a fast, model-free stand-in for a real answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from distillguard.watermark.keys import SecretKey, write_key_file


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "wm.key"
    write_key_file(path, SecretKey(bytes(range(32))))
    return path


@pytest.fixture(scope="session")
def text_tokenizer():
    from distillguard.model import load_text_tokenizer

    return load_text_tokenizer()


@pytest.fixture(scope="session")
def word_ids(text_tokenizer) -> np.ndarray:
    vocab = json.loads(text_tokenizer.path.read_text(encoding="utf-8"))["model"]["vocab"]
    return np.array(
        sorted(
            i
            for s, i in vocab.items()
            if s.startswith("Ġ") and s[1:].isalpha() and s[1:].islower() and len(s) > 3
        )
    )


@pytest.fixture
def watermarked_text(text_tokenizer, word_ids) -> Callable[..., str]:
    def make(scheme, payload: int | None, n_tokens: int = 200, seed: int = 0) -> str:
        rng = np.random.default_rng(seed)
        vocab = text_tokenizer.vocab_size
        ids = list(rng.choice(word_ids, 4))
        for _ in range(n_tokens):
            scores = np.full((1, vocab), -np.inf, dtype=np.float32)
            scores[0, word_ids] = rng.standard_normal(word_ids.size).astype(np.float32)
            out = scheme.process(np.asarray([ids], dtype=np.int64), scores, [payload])[0]
            p = np.exp(out - out.max())
            ids.append(int(rng.choice(vocab, p=p / p.sum())))
        return text_tokenizer.decode(ids)

    return make
