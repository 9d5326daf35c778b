"""STIX 2.1 mapping (the ``stix2`` boundary): findings → bundle, and bundle objects → indicators.

Our additions travel through two STIX 2.1 ``extension-definition`` objects whose ids never
change, so every coalition member recognises them:

* :data:`EXT_PROPERTIES` — a property extension on ``campaign`` and ``indicator`` (coalition,
  key epoch, pseudonym kind, keyed MinHash, behaviour profile); schema
  ``docs/intel-extension.schema.json``;
* :data:`EXT_PSEUDONYM` — a new SCO, ``distillguard-pseudonym`` (kind, value, key epoch), the
  object our indicator patterns and observed-data refer to; schema
  ``docs/intel-pseudonym-sco.schema.json``.

The stix2 classes for both are registered on first use (not at import).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from distillguard.errors import ConfigError, missing_extra
from distillguard.intel.findings import Finding, IndicatorSpec

__all__ = [
    "EXT_PROPERTIES",
    "EXT_PSEUDONYM",
    "MINHASH_SCHEME",
    "PSEUDONYM_TYPE",
    "TLP_LEVELS",
    "Producer",
    "build_bundle",
    "canonical_pattern",
    "load_schema",
    "revoke",
    "stix_time",
]

PSEUDONYM_TYPE = "distillguard-pseudonym"
MINHASH_SCHEME = "dg-shake256-v1"
# Fixed for the lifetime of schema version 1.x: partners key on these ids.
EXT_PROPERTIES = "extension-definition--d6a1f3c2-8e4b-4c1a-9f0e-5b7d2a6c3e81"
EXT_PSEUDONYM = "extension-definition--4b9e7d10-2c5f-4e8a-b3d6-91f0c7a25e44"
DG_PROJECT_IDENTITY = "identity--0d1a6f9e-3c2b-4d7e-8a5f-6b4c3d2e1f00"
_NAMESPACE = uuid.UUID("6f0a8a2e-57c1-4f4e-9a3d-2f0b8c1d7e55")
_EXT_CREATED = "2026-11-01T00:00:00.000Z"
TLP_LEVELS: tuple[str, ...] = ("white", "green", "amber", "red")

_lock = threading.Lock()
_registered = False


def load_schema(name: str) -> dict[str, Any]:
    """Return one of the packaged JSON schemas: ``"extension"`` or ``"pseudonym-sco"``."""
    if name not in ("extension", "pseudonym-sco"):
        raise ConfigError(f"unknown schema {name!r}; expected 'extension' or 'pseudonym-sco'")
    text = resources.files("distillguard.intel").joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _stix2() -> Any:
    try:
        import stix2
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("stix2", "intel") from exc
    return stix2


def register() -> None:
    """Register the two extensions with stix2 (idempotent, thread-safe)."""
    global _registered
    with _lock:
        if _registered:
            return
        _stix2()  # a clear DependencyError when the extra is missing
        from stix2 import properties as p
        from stix2.v21 import CustomExtension, CustomObservable

        CustomExtension(
            EXT_PROPERTIES,
            [
                ("coalition", p.StringProperty(required=True)),
                ("key_epoch", p.IntegerProperty(required=True, min=1)),
                ("pseudonym_kind", p.StringProperty()),
                ("pseudonym", p.StringProperty()),
                ("minhash_scheme", p.StringProperty()),
                ("minhash", p.ListProperty(p.IntegerProperty(min=0))),
                ("uses", p.IntegerProperty(min=0)),
                ("n_accounts", p.IntegerProperty(min=1)),
                ("n_requests", p.IntegerProperty(min=0)),
                ("profile", p.DictionaryProperty()),
            ],
        )(type("DgProperties", (), {"extension_type": "property-extension"}))
        CustomObservable(
            PSEUDONYM_TYPE,
            [
                ("kind", p.StringProperty(required=True)),
                ("value", p.StringProperty(required=True)),
                ("key_epoch", p.IntegerProperty(required=True, min=1)),
                ("coalition", p.StringProperty(required=True)),
            ],
            ["kind", "value", "key_epoch", "coalition"],
            extension_name=EXT_PSEUDONYM,
        )(type("DgPseudonym", (), {}))
        _registered = True


def stix_time(ts: float) -> str:
    """Return epoch seconds as a STIX timestamp (UTC, millisecond precision)."""
    d = dt.datetime.fromtimestamp(ts, dt.UTC)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def canonical_pattern(kind: str, value: str, epoch: int) -> str:
    """Return the STIX pattern of a pseudonym indicator (``value`` is lower-case hex)."""
    t = PSEUDONYM_TYPE
    return f"[{t}:kind = '{kind}' AND {t}:value = '{value}' AND {t}:key_epoch = {int(epoch)}]"


@dataclass(frozen=True)
class Producer:
    """Who we are in the coalition: a display name and the coalition name."""

    name: str
    coalition: str

    @property
    def identity_id(self) -> str:
        """A stable identity id derived from the coalition and name."""
        return f"identity--{uuid.uuid5(_NAMESPACE, f'{self.coalition}/{self.name}')}"


def _id(kind: str, *parts: str) -> str:
    return f"{kind}--{uuid.uuid5(_NAMESPACE, '/'.join(parts))}"


def _extension_definitions(stix2: Any) -> list[Any]:
    base = "https://distillguard.dev/schemas/intel/"
    return [
        stix2.Identity(
            id=DG_PROJECT_IDENTITY,
            name="distillguard project",
            identity_class="organization",
            created=_EXT_CREATED,
            modified=_EXT_CREATED,
        ),
        stix2.ExtensionDefinition(
            id=EXT_PROPERTIES,
            created_by_ref=DG_PROJECT_IDENTITY,
            created=_EXT_CREATED,
            modified=_EXT_CREATED,
            name="distillguard LLM-abuse properties",
            version="1.0.0",
            schema=base + "llm-abuse-properties/1.0.json",
            extension_types=["property-extension"],
            description="Pseudonymised evidence of unauthorized LLM distillation "
            "(docs/intel-extension.schema.json).",
        ),
        stix2.ExtensionDefinition(
            id=EXT_PSEUDONYM,
            created_by_ref=DG_PROJECT_IDENTITY,
            created=_EXT_CREATED,
            modified=_EXT_CREATED,
            name="distillguard-pseudonym",
            version="1.0.0",
            schema=base + "distillguard-pseudonym/1.0.json",
            extension_types=["new-sco"],
            description="A keyed pseudonym of an identifier (docs/intel-pseudonym-sco.schema.json).",
        ),
    ]


def _indicator_objects(
    stix2: Any,
    spec: IndicatorSpec,
    producer: Producer,
    camp_id: str,
    od_id: str,
    common: dict[str, Any],
    confidence: int,
    now_s: str,
) -> tuple[Any, ...]:
    sco = stix2.parse(
        {
            "type": PSEUDONYM_TYPE,
            "spec_version": "2.1",
            "kind": spec.kind,
            "value": spec.value,
            "key_epoch": spec.epoch,
            "coalition": producer.coalition,
            "extensions": {EXT_PSEUDONYM: {"extension_type": "new-sco"}},
        }
    )
    ext: dict[str, Any] = {
        "extension_type": "property-extension",
        "coalition": producer.coalition,
        "key_epoch": spec.epoch,
        "pseudonym_kind": spec.kind,
        "pseudonym": spec.value,
        "uses": min(spec.count, 999_999_999),
    }
    if spec.minhash:
        ext.update(minhash_scheme=MINHASH_SCHEME, minhash=list(spec.minhash))
    ind_id = _id("indicator", producer.identity_id, spec.kind, spec.value, str(spec.epoch))
    ind = stix2.Indicator(
        id=ind_id,
        created=stix_time(spec.first_seen),
        modified=now_s,
        name=f"{spec.kind} pseudonym linked to LLM distillation",
        indicator_types=["malicious-activity"],
        pattern=canonical_pattern(spec.kind, spec.value, spec.epoch),
        pattern_type="stix",
        valid_from=stix_time(spec.first_seen),
        valid_until=stix_time(spec.valid_until),
        confidence=confidence,
        extensions={EXT_PROPERTIES: ext},
        **common,
    )
    rel = stix2.Relationship(
        id=_id("relationship", ind_id, "indicates", camp_id),
        created=ind.created,
        modified=now_s,
        relationship_type="indicates",
        source_ref=ind_id,
        target_ref=camp_id,
        **common,
    )
    sight = stix2.Sighting(
        id=_id("sighting", ind_id, producer.identity_id),
        created=ind.created,
        modified=now_s,
        sighting_of_ref=ind_id,
        observed_data_refs=[od_id],
        where_sighted_refs=[producer.identity_id],
        count=min(spec.count, 999_999_999),
        first_seen=stix_time(spec.first_seen),
        last_seen=stix_time(spec.last_seen),
        confidence=confidence,
        **common,
    )
    return sco, ind, rel, sight


def build_bundle(
    findings: list[Finding], producer: Producer, now: float, tlp: str = "amber"
) -> dict[str, Any]:
    """Return a STIX 2.1 bundle (as a JSON-ready dict) describing ``findings``.

    Contains our identity, the two extension definitions, the TLP marking, and per finding a
    ``campaign``, its ``indicator``s (each ``indicates`` the campaign), ``distillguard-pseudonym``
    SCOs, one ``observed-data`` and a ``sighting`` per indicator. Ids are deterministic, so a
    re-export of the same finding is a new version (later ``modified``) of the same objects.
    Raises :class:`ConfigError` for an unknown TLP level.
    """
    if tlp not in TLP_LEVELS:
        raise ConfigError(f"The 'tlp' parameter must be one of {TLP_LEVELS}. Got {tlp!r} instead.")
    stix2 = _stix2()
    register()
    marking = getattr(stix2, f"TLP_{tlp.upper()}")
    now_s = stix_time(now)
    ident = stix2.Identity(
        id=producer.identity_id,
        name=producer.name,
        identity_class="organization",
        created=_EXT_CREATED,
        modified=_EXT_CREATED,
        sectors=["technology"],
    )
    common = {"created_by_ref": ident.id, "object_marking_refs": [marking.id]}
    objs: list[Any] = [ident, *_extension_definitions(stix2), marking]
    for f in findings:
        camp_id = _id("campaign", producer.identity_id, f.ref)
        camp = stix2.Campaign(
            id=camp_id,
            created=stix_time(f.first_seen),
            modified=now_s,
            name=f"LLM distillation campaign {f.ref[:12]}",
            description=f"{f.n_accounts} accounts, {f.n_requests} requests consistent with model extraction.",
            first_seen=stix_time(f.first_seen),
            last_seen=stix_time(f.last_seen),
            confidence=f.confidence,
            extensions={
                EXT_PROPERTIES: {
                    "extension_type": "property-extension",
                    "coalition": producer.coalition,
                    "key_epoch": max((s.epoch for s in f.indicators), default=1),
                    "n_accounts": f.n_accounts,
                    "n_requests": f.n_requests,
                    "profile": dict(f.profile),
                }
            },
            **common,
        )
        parts = [
            _indicator_objects(
                stix2, s, producer, camp_id, _id("observed-data", camp_id), common, f.confidence, now_s
            )
            for s in f.indicators
        ]
        od = stix2.ObservedData(
            id=_id("observed-data", camp_id),
            created=camp.created,
            modified=now_s,
            first_observed=stix_time(f.first_seen),
            last_observed=stix_time(max(f.last_seen, f.first_seen + 0.001)),
            number_observed=max(1, min(f.n_requests, 999_999_999)),
            object_refs=sorted({p[0].id for p in parts}) or [ident.id],
            confidence=f.confidence,
            **common,
        )
        scos = {p[0].id: p[0] for p in parts}
        objs += [camp, *scos.values(), od, *(o for p in parts for o in p[1:])]
    bundle = stix2.Bundle(objects=objs)
    out: dict[str, Any] = json.loads(bundle.serialize())
    return out


def revoke(obj: dict[str, Any], now: float) -> dict[str, Any]:
    """Return a new version of an indicator/campaign object that revokes it (``modified = now``)."""
    out = dict(obj)
    out["revoked"] = True
    out["modified"] = stix_time(now)
    return out
