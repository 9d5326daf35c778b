"""The scheme settings the command line and the demo use for both generating and detecting.

Generation and detection must agree on the config (payload bits, context width, ...). Every
entry point that writes or reads watermarked text from the command line builds its scheme here,
so ``distillguard generate`` output is always detectable by ``distillguard detect``. The preset
embeds a 32-bit account payload; rows without an account carry the reserved id 0.
"""

from __future__ import annotations

from distillguard.watermark.base import WatermarkScheme, schemes
from distillguard.watermark.keys import KeyRing, SecretKey

__all__ = ["PAYLOAD_BITS", "cli_scheme"]

PAYLOAD_BITS = 32


def cli_scheme(name: str, key: SecretKey | KeyRing) -> WatermarkScheme:
    """The registered scheme ``name`` with its default config and a 32-bit account payload.

    Raises:
        UnknownPluginError: no scheme is registered under ``name``.
    """
    cls = schemes.get(name)
    config_class = getattr(cls, "config_class", None)
    config = config_class(payload_bits=PAYLOAD_BITS) if config_class is not None else None
    return cls(config, key)  # type: ignore[call-arg]
