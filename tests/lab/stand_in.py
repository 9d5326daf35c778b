"""A stand-in teacher for the lab tests: a synthetic Markov model behind the Generator interface,
watermarked per row with the row's account payload (no SmolLM2, runs in seconds)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from distillguard.provenance.simulate import MarkovTeacher

V = 64


@dataclass
class Gen:
    text: str
    token_ids: tuple[int, ...]


class Tok:
    """Chat template stand-in: a prompt maps to a few ids derived from its text."""

    def apply_chat_template(self, chat, add_generation_prompt=False, tokenize=True):
        text = " ".join(m["content"] for m in chat)
        return [V + (b % 32) for b in text.encode()[:40]]


class Teacher:
    """A Markov teacher; with a payload-mode scheme it embeds each row's account payload."""

    def __init__(self, scheme=None, table=None) -> None:
        self.scheme, self.tokenizer = scheme, Tok()
        self.markov = table or MarkovTeacher(V, np.random.default_rng(1), scale=1.5)

    def with_scheme(self, scheme):
        return Teacher(scheme, self.markov)

    def generate(self, prompts, payloads, *, max_new_tokens, temperature, seed, batch_size):
        rng = np.random.default_rng(seed)
        starts = np.array([[zlib.crc32(p.encode()) % V] for p in prompts])  # stable across runs
        out = self.markov.generate(
            starts, max_new_tokens, rng, scheme=self.scheme, payloads=payloads if self.scheme else None
        )
        return [Gen("", tuple(int(t) for t in row)) for row in out]
