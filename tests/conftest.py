"""Shared fixtures: a seeded rng, and skips for optional environments."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator: every statistical test is reproducible."""
    return np.random.default_rng(20261128)
