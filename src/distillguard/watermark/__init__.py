"""Keyed watermarks for generated text: schemes, keys, detection, payloads, localisation.

Importing the package registers the built-in schemes (``kgw``, ``gumbel``) in
:data:`schemes`; they are pure numpy and cheap to import. Framework adapters (``hf.py`` for
transformers, ``vllm.py``) are edge modules imported on demand.
"""

from __future__ import annotations

from distillguard.watermark.base import Detection, PayloadEstimate, Span, WatermarkScheme, schemes
from distillguard.watermark.detector import Detector, detect_any
from distillguard.watermark.gumbel import Gumbel, GumbelConfig
from distillguard.watermark.keys import KeyRing, SecretKey, generate_key, load_key_file, write_key_file
from distillguard.watermark.kgw import KGW, KGWConfig
from distillguard.watermark.payload import TraceResult, account_id

__all__ = [
    "KGW",
    "Detection",
    "Detector",
    "Gumbel",
    "GumbelConfig",
    "KGWConfig",
    "KeyRing",
    "PayloadEstimate",
    "SecretKey",
    "Span",
    "TraceResult",
    "WatermarkScheme",
    "account_id",
    "detect_any",
    "generate_key",
    "load_key_file",
    "schemes",
    "write_key_file",
]
