"""Synthetic teachers, harvests and students shared by the provenance tests (all seeded)."""

from __future__ import annotations

import numpy as np
import pytest

from distillguard.provenance.simulate import CountStudent, MarkovTeacher
from distillguard.watermark import KGW, Gumbel, GumbelConfig, KGWConfig, SecretKey

VOCAB = 200


@pytest.fixture
def key() -> SecretKey:
    return SecretKey(bytes(range(32)))


@pytest.fixture
def teacher() -> MarkovTeacher:
    return MarkovTeacher(VOCAB, np.random.default_rng(7))


def build(name: str, key: SecretKey, **cfg: object) -> KGW | Gumbel:
    """A scheme with context width 1 (what a small synthetic student can learn) unless overridden."""
    cfg.setdefault("context_width", 1)
    if name == "kgw":
        return KGW(KGWConfig(**cfg), key)  # type: ignore[arg-type]
    return Gumbel(GumbelConfig(**cfg), key)  # type: ignore[arg-type]


def distilled_student(
    teacher: MarkovTeacher,
    scheme: KGW | Gumbel,
    rng: np.random.Generator,
    *,
    n: int = 200,
    payloads: list[int | None] | None = None,
    clean_fraction: float = 0.0,
) -> CountStudent:
    """A count student trained on ``n`` watermarked answers (plus clean ones if asked)."""
    prompts = rng.integers(0, VOCAB, (n, 2))
    texts = list(teacher.generate(prompts, 100, rng, scheme=scheme, payloads=payloads))
    n_clean = round(n * clean_fraction / max(1e-9, 1 - clean_fraction))
    if n_clean:
        texts += list(teacher.generate(rng.integers(0, VOCAB, (n_clean, 2)), 100, rng))
    return CountStudent(VOCAB, order=1, smoothing=0.01).fit(texts)
