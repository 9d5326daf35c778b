"""Prompt templates as keyed MinHash signatures: the shape of a campaign's prompts, not their text.

An extraction campaign sends one framing with a varying slot ("Provide a detailed tutorial on
{topic}."). :func:`extract_templates` recovers those framings from one account's or one
campaign's prompts: prompts are normalised (lower case, digit runs → ``#``, quoted strings →
``q``, other punctuation → space), grouped by their first and by their last
:data:`ANCHOR_WORDS` words, and a group used at least ``min_uses`` times yields the word
shingles that most of its prompts share — the fixed frame. The slot's words, which are what a
user actually asked about, fall below the support threshold and are never part of a template.

A template leaves only as a MinHash signature whose hash functions are keyed by the coalition
key, so a non-member cannot test guesses against it; members compare signatures and get the
Jaccard similarity of the underlying shingle sets. Pure: stdlib and numpy.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.intel.pseudonym import CoalitionKey

__all__ = [
    "ANCHOR_WORDS",
    "NUM_PERM",
    "Template",
    "TemplateConfig",
    "extract_templates",
    "jaccard",
    "minhash",
    "normalise_prompt",
    "signature_digest",
]

ANCHOR_WORDS = 3
NUM_PERM = 128
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|“[^”]*”")
_DIGITS = re.compile(r"[0-9]+")
_OTHER = re.compile(r"[^a-z#\s]+")
_MAX_PROMPT_CHARS = 4000


@dataclass(frozen=True)
class TemplateConfig:
    """How templates are recovered: ``min_uses`` prompts per group, shingles shared by
    ``min_support`` of them, at least ``min_shingles`` shingles in a frame."""

    min_uses: int = 3
    min_support: float = 0.6
    min_shingles: int = 3
    shingle: int = 3

    def __post_init__(self) -> None:
        if not isinstance(self.min_uses, int) or self.min_uses < 2:
            raise ConfigError(
                "The 'min_uses' parameter of TemplateConfig must be an int >= 2. "
                f"Got {self.min_uses!r} instead."
            )
        if not (0.5 < self.min_support <= 1.0):
            raise ConfigError(
                "The 'min_support' parameter of TemplateConfig must be a float in (0.5, 1]. "
                f"Got {self.min_support!r} instead."
            )
        if not isinstance(self.min_shingles, int) or self.min_shingles < 1:
            raise ConfigError(
                "The 'min_shingles' parameter of TemplateConfig must be an int >= 1. "
                f"Got {self.min_shingles!r} instead."
            )
        if not isinstance(self.shingle, int) or not (1 <= self.shingle <= 5):
            raise ConfigError(
                "The 'shingle' parameter of TemplateConfig must be an int in [1, 5]. "
                f"Got {self.shingle!r} instead."
            )


@dataclass(frozen=True)
class Template:
    """A recovered framing: its shingle set (stays local) and how many prompts used it."""

    shingles: frozenset[str]
    uses: int


def normalise_prompt(text: str) -> str:
    """Return the normalised form used for templates (see the module docstring)."""
    t = text[:_MAX_PROMPT_CHARS].lower()
    t = _QUOTED.sub(" q ", t)
    t = _DIGITS.sub("#", t)
    t = _OTHER.sub(" ", t)
    return " ".join(t.split())


def _shingles(words: list[str], k: int) -> set[str]:
    padded = ["^", *words, "$"]
    if len(padded) < k:
        return {" ".join(padded)}
    return {" ".join(padded[i : i + k]) for i in range(len(padded) - k + 1)}


def extract_templates(prompts: Iterable[str], config: TemplateConfig | None = None) -> list[Template]:
    """Return the distinct templates recurring in ``prompts``, most used first.

    >>> ps = [f"Provide a detailed tutorial on {t}." for t in ("volcanoes", "jazz", "sql joins")]
    >>> [sorted(t.shingles)[:2] for t in extract_templates(ps)]
    [['^ provide a', 'a detailed tutorial']]
    """
    cfg = config or TemplateConfig()
    groups: dict[tuple[str, str], list[set[str]]] = defaultdict(list)
    for p in prompts:
        words = normalise_prompt(p).split()
        if len(words) < 2 * ANCHOR_WORDS - 1:
            continue  # "hi", "continue": too short to carry a framing
        sh = _shingles(words, cfg.shingle)
        groups[("head", " ".join(words[:ANCHOR_WORDS]))].append(sh)
        groups[("tail", " ".join(words[-ANCHOR_WORDS:]))].append(sh)
    found: dict[frozenset[str], int] = {}
    for members in groups.values():
        if len(members) < cfg.min_uses:
            continue
        counts: dict[str, int] = defaultdict(int)
        for sh in members:
            for s in sh:
                counts[s] += 1
        need = cfg.min_support * len(members)
        frame = frozenset(s for s, c in counts.items() if c >= need)
        if len(frame) >= cfg.min_shingles:
            found[frame] = max(found.get(frame, 0), len(members))
    return [Template(f, n) for f, n in sorted(found.items(), key=lambda kv: (-kv[1], sorted(kv[0])))]


def minhash(shingles: Iterable[str], key: CoalitionKey, num_perm: int = NUM_PERM) -> list[int]:
    """Return the keyed MinHash signature (``num_perm`` ints below 2^52) of a shingle set.

    Hash function ``i`` of shingle ``s`` is the ``i``-th 8-byte word of
    ``SHAKE-256(k || len(s) || s)`` with ``k`` the coalition key's MinHash subkey: a keyed sponge
    (the construction of KMAC), so the functions are independent and unknown outside the
    coalition. Raises :class:`InputError` for an empty set.
    """
    items = sorted(set(shingles))
    if not items:
        raise InputError("a MinHash signature needs at least one shingle")
    if not isinstance(num_perm, int) or not (16 <= num_perm <= 1024):
        raise ConfigError(f"num_perm must be an int in [16, 1024]. Got {num_perm!r} instead.")
    k = key.subkey("minhash")
    rows = np.empty((len(items), num_perm), dtype=np.uint64)
    for j, s in enumerate(items):
        b = s.encode()
        digest = hashlib.shake_256(k + len(b).to_bytes(4, "big") + b).digest(8 * num_perm)
        rows[j] = np.frombuffer(digest, dtype=">u8")
    # Keep 52 bits: I-JSON (RFC 7493) peers parse numbers as IEEE doubles, exact only below 2^53.
    return [int(v) >> 12 for v in rows.min(axis=0)]


def jaccard(sig_a: Iterable[int], sig_b: Iterable[int]) -> float:
    """Return the MinHash estimate of Jaccard similarity: the share of equal positions.

    Raises :class:`InputError` when the signatures differ in length or are empty.
    """
    a, b = list(sig_a), list(sig_b)
    if not a or len(a) != len(b):
        raise InputError(
            f"MinHash signatures must be non-empty and of equal length; got {len(a)} and {len(b)}"
        )
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def signature_digest(signature: Iterable[int]) -> str:
    """Return the SHA-256 hex digest of a signature (the value a STIX pattern can match exactly)."""
    return hashlib.sha256(",".join(str(int(v)) for v in signature).encode()).hexdigest()
