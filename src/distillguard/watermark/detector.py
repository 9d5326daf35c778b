"""Batch detection: build the scheme and keys once, then scan many texts.

>>> from distillguard.watermark.keys import SecretKey
>>> det = Detector("kgw", SecretKey(bytes(32)))
>>> det.detect_ids([1, 2, 3]).enough_tokens
False
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from distillguard.errors import ConfigError
from distillguard.watermark._common import check_real
from distillguard.watermark.base import Detection, WatermarkScheme, schemes
from distillguard.watermark.keys import KeyRing, SecretKey, as_keyring
from distillguard.watermark.payload import TraceResult

__all__ = ["Detector", "detect_any"]


class Detector:
    """A scheme and its keys, set up once for many :meth:`detect_ids` calls.

    Args:
        scheme: a registered scheme name (``"kgw"``, ``"gumbel"``) or a built scheme.
        key: a SecretKey, KeyRing or 32 bytes (ignored when ``scheme`` is already built).
        config: the scheme's config (default config when None).
        alpha, dedup, decode_payload, localize: defaults for every detection.

    With several keys, each text is tested under every key and the best p-value is corrected
    with Šidák's formula (stated in ``Detection.details["correction"]``).
    """

    def __init__(
        self,
        scheme: str | WatermarkScheme,
        key: SecretKey | KeyRing | bytes | None = None,
        config: Any = None,
        *,
        alpha: float = 1e-6,
        dedup: bool = True,
        decode_payload: bool = True,
        localize: bool = False,
    ) -> None:
        check_real("Detector", "alpha", alpha, 0.0, 1.0)
        if isinstance(scheme, WatermarkScheme):
            self.scheme = scheme
        elif isinstance(scheme, str):
            cls = schemes.get(scheme)
            self.scheme = cls(config, key)  # type: ignore[call-arg]
        else:
            raise ConfigError(
                f"Expected a scheme name or WatermarkScheme. Got {type(scheme).__name__} instead."
            )
        self.alpha = alpha
        self.dedup = dedup
        self.decode_payload = decode_payload
        self.localize = localize

    def detect_ids(self, token_ids: Sequence[int] | np.ndarray) -> Detection:
        """Test one sequence of token ids."""
        return self.scheme.detect(
            token_ids,
            alpha=self.alpha,
            dedup=self.dedup,
            decode_payload=self.decode_payload,
            localize=self.localize,
        )

    def detect_many(self, texts: Iterable[Sequence[int] | np.ndarray]) -> list[Detection]:
        """Test many sequences; one Detection per input, in order (no cross-text correction)."""
        return [self.detect_ids(t) for t in texts]

    def trace(self, token_ids: Sequence[int] | np.ndarray, candidates: Sequence[int | str]) -> TraceResult:
        """Trace the text against candidate accounts (payload-mode schemes only)."""
        trace = getattr(self.scheme, "trace", None)
        if trace is None:
            raise ConfigError(f"Scheme {self.scheme.name!r} does not support trace().")
        result: TraceResult = trace(token_ids, candidates, alpha=self.alpha, dedup=self.dedup)
        return result


def detect_any(
    keyring: KeyRing | SecretKey,
    token_ids: Sequence[int] | np.ndarray,
    scheme: str = "kgw",
    config: Any = None,
    **kwargs: Any,
) -> Detection:
    """Test a text under every active key; the p-value is Šidák-corrected for the number of keys.

    ``kwargs`` are passed to ``detect`` (``alpha``, ``dedup``, ``decode_payload``, ``localize``).
    """
    return schemes.get(scheme)(config, as_keyring(keyring)).detect(token_ids, **kwargs)  # type: ignore[call-arg]
