"""Threat-intelligence sharing: pseudonymised STIX 2.1 indicators of distillation campaigns.

Pure core — :mod:`~distillguard.intel.pseudonym` (keyed HMAC pseudonyms, key epochs),
:mod:`~distillguard.intel.templates` (keyed MinHash of prompt framings),
:mod:`~distillguard.intel.activity`, :mod:`~distillguard.intel.findings` (what may be shared),
:mod:`~distillguard.intel.match` (alerts and a risk input). Library boundaries —
:mod:`~distillguard.intel.stix` (``stix2``) and :mod:`~distillguard.intel.importer`
(validation). Edges — :mod:`~distillguard.intel.store`, :mod:`~distillguard.intel.taxii_server`
(FastAPI), :mod:`~distillguard.intel.exchange` (``taxii2-client``),
:mod:`~distillguard.intel.keyfile` and :mod:`~distillguard.intel.logsource`.

Names below resolve lazily, so ``import distillguard.intel`` loads neither stix2 nor FastAPI.
See docs/intel.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "CoalitionKey": "pseudonym",
    "KeyRing": "pseudonym",
    "ExportConfig": "findings",
    "Finding": "findings",
    "build_findings": "findings",
    "collect_activity": "activity",
    "Producer": "stix",
    "build_bundle": "stix",
    "BundleRejected": "importer",
    "PartnerIndicator": "importer",
    "parse_bundle": "importer",
    "Alert": "match",
    "MatchConfig": "match",
    "match": "match",
    "risk_input": "match",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'distillguard.intel' has no attribute {name!r}")
    return getattr(importlib.import_module(f"distillguard.intel.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
