"""Text edits an adversary (or an honest editor) applies to watermarked text, for robustness
evaluation: word deletion, substitution and insertion at a rate, truncation, and pasting a
watermarked passage into a human document.

Pure and seeded: every function takes a ``numpy.random.Generator`` so an evaluation can be
replayed. Edits work on whitespace-separated words (the unit a human editor changes), so the
token-level damage depends on the tokenizer — which is the point: it is what the detector sees.
Paraphrase by a model is not here (it needs a model); ``bench/bench_watermark_robustness.py``
asks SmolLM2 itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distillguard.errors import ConfigError, InputError

__all__ = ["EditAttack", "Pasted", "delete_words", "insert_words", "paste_into", "substitute_words",
           "truncate_words"]


def _check_rate(rate: float) -> None:
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0.0 <= rate <= 1.0:
        raise ConfigError(f"The 'rate' of an edit attack must be a number in [0, 1]. Got {rate!r} instead.")


def _words(text: str) -> list[str]:
    if not isinstance(text, str):
        raise InputError(f"Expected text (str). Got {type(text).__name__} instead.")
    return text.split()


def delete_words(text: str, rate: float, rng: np.random.Generator) -> str:
    """Delete each word independently with probability ``rate``."""
    _check_rate(rate)
    words = _words(text)
    keep = rng.random(len(words)) >= rate
    return " ".join(w for w, k in zip(words, keep, strict=True) if k)


def substitute_words(text: str, rate: float, rng: np.random.Generator, vocabulary: Sequence[str]) -> str:
    """Replace each word with probability ``rate`` by a word drawn from ``vocabulary`` (e.g.
    words of human text), which breaks the (context, token) tuples around it."""
    _check_rate(rate)
    if not vocabulary:
        raise InputError("substitute_words needs a non-empty vocabulary to draw replacements from.")
    words = _words(text)
    hit = rng.random(len(words)) < rate
    picks = rng.integers(0, len(vocabulary), size=len(words))
    return " ".join(vocabulary[int(p)] if h else w for w, h, p in zip(words, hit, picks, strict=True))


def insert_words(text: str, rate: float, rng: np.random.Generator, vocabulary: Sequence[str]) -> str:
    """After each word, insert a vocabulary word with probability ``rate``."""
    _check_rate(rate)
    if not vocabulary:
        raise InputError("insert_words needs a non-empty vocabulary to draw insertions from.")
    out: list[str] = []
    for w in _words(text):
        out.append(w)
        if rng.random() < rate:
            out.append(vocabulary[int(rng.integers(0, len(vocabulary)))])
    return " ".join(out)


def truncate_words(text: str, keep: int) -> str:
    """Keep the first ``keep`` words."""
    if not isinstance(keep, int) or keep < 0:
        raise ConfigError(f"The 'keep' of truncate_words must be an int ≥ 0. Got {keep!r} instead.")
    return " ".join(_words(text)[:keep])


@dataclass(frozen=True)
class Pasted:
    """A human document with a watermarked passage pasted in, and where it went (characters)."""

    text: str
    start_char: int
    end_char: int

    @property
    def fraction(self) -> float:
        """Share of the document's characters that came from the watermarked passage."""
        return (self.end_char - self.start_char) / max(1, len(self.text))


def paste_into(human: str, passage: str, fraction: float, rng: np.random.Generator) -> Pasted:
    """Paste ``passage`` into ``human`` text so it makes up about ``fraction`` of the result.

    The human text is cut (it must be long enough: nothing is invented to pad it) to
    ``len(passage) * (1 - fraction) / fraction`` characters on word boundaries, and the passage
    goes in at a random word boundary.

    Raises:
        InputError: the human text is too short for the requested fraction.
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"The 'fraction' of paste_into must be in (0, 1]. Got {fraction!r} instead.")
    need = round(len(passage) * (1.0 - fraction) / fraction)
    words = _words(human)
    body: list[str] = []
    size = 0
    for w in words:
        if size >= need:
            break
        body.append(w)
        size += len(w) + 1
    if size < need:
        raise InputError(f"The human text has {size} characters; {need} are needed to make the passage "
                         f"{fraction:.0%} of the document.")
    at = int(rng.integers(0, len(body) + 1))
    before, after = " ".join(body[:at]), " ".join(body[at:])
    start = len(before) + (1 if before else 0)
    text = " ".join(p for p in (before, passage, after) if p)
    return Pasted(text=text, start_char=start, end_char=start + len(passage))


@dataclass(frozen=True)
class EditAttack:
    """A named, seeded edit at a rate, for evaluation tables (``kind``: delete/substitute/insert)."""

    kind: str
    rate: float

    def __post_init__(self) -> None:
        if self.kind not in ("delete", "substitute", "insert"):
            raise ConfigError(f"The 'kind' of EditAttack must be delete, substitute or insert. "
                              f"Got {self.kind!r} instead.")
        _check_rate(self.rate)

    @property
    def name(self) -> str:
        return f"{self.kind} {self.rate:.0%}"

    def apply(self, text: str, rng: np.random.Generator, vocabulary: Sequence[str] = ()) -> str:
        """Apply the edit to ``text``."""
        if self.kind == "delete":
            return delete_words(text, self.rate, rng)
        if self.kind == "substitute":
            return substitute_words(text, self.rate, rng, vocabulary)
        return insert_words(text, self.rate, rng, vocabulary)
