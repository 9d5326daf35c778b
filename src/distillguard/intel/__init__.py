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

from distillguard._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "CoalitionKey": "distillguard.intel.pseudonym",
    "KeyRing": "distillguard.intel.pseudonym",
    "ExportConfig": "distillguard.intel.findings",
    "Finding": "distillguard.intel.findings",
    "build_findings": "distillguard.intel.findings",
    "collect_activity": "distillguard.intel.activity",
    "Producer": "distillguard.intel.stix",
    "build_bundle": "distillguard.intel.stix",
    "BundleRejected": "distillguard.intel.importer",
    "PartnerIndicator": "distillguard.intel.importer",
    "parse_bundle": "distillguard.intel.importer",
    "Alert": "distillguard.intel.match",
    "MatchConfig": "distillguard.intel.match",
    "match": "distillguard.intel.match",
    "risk_input": "distillguard.intel.match",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
