"""Fixed keys for watermark tests (the synthetic model lives in distillguard.watermark.simulate)."""

from __future__ import annotations

import pytest

from distillguard.watermark.keys import SecretKey


@pytest.fixture
def key() -> SecretKey:
    """A fixed key so failures reproduce."""
    return SecretKey(bytes(range(32)))


@pytest.fixture
def other_key() -> SecretKey:
    """A second, unrelated key."""
    return SecretKey(bytes(range(100, 132)))
