"""Fixtures for the model edge: a tiny random Llama (fast, no weights) and the real SmolLM2.

The real model is loaded once per session (``smollm2``); tests that use it are marked
``model``. The tiny model lets the adapter and the Generator be tested in milliseconds: its
random weights give high-entropy next-token distributions, where a watermark is strong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from distillguard.watermark.keys import SecretKey

TINY_VOCAB = 512
TINY_EOS = 2
TINY_PAD = 0


class TinyChatTokenizer:
    """The slice of a HF tokenizer the Generator uses: chat template, pad/eos ids, decode."""

    pad_token_id = TINY_PAD
    eos_token_id = TINY_EOS

    def apply_chat_template(
        self, chat: Sequence[Mapping[str, str]], add_generation_prompt: bool = True, tokenize: bool = True
    ) -> list[int]:
        body = [3 + (ord(c) % (TINY_VOCAB - 3)) for m in chat for c in m["role"] + ":" + m["content"]]
        return [1, *body, 1]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return " ".join(f"t{i}" for i in ids)


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """A 2-layer random Llama with a 512-token vocabulary (seeded)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=TINY_EOS,
        pad_token_id=TINY_PAD,
    )
    model = transformers.LlamaForCausalLM(cfg).eval()
    model.generation_config = transformers.GenerationConfig(
        eos_token_id=TINY_EOS, pad_token_id=TINY_PAD, bos_token_id=1
    )
    return model


@pytest.fixture(scope="session")
def tiny_tokenizer() -> TinyChatTokenizer:
    return TinyChatTokenizer()


@pytest.fixture(scope="session")
def wm_key() -> SecretKey:
    """A fixed key so failures reproduce."""
    return SecretKey(bytes(range(32)))


@pytest.fixture(scope="session")
def smollm2() -> Any:
    """The real SmolLM2 Generator (no scheme), loaded once for the whole session."""
    from distillguard.model import Generator

    return Generator.load()
