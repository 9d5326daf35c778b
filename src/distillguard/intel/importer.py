"""Validate partner STIX 2.1 content before anything is stored, and read our indicators out of it.

Checks, all before a single object is accepted (a bundle is taken whole or not at all): size,
JSON well-formedness and nesting depth, the bundle envelope, each object's type (an allow-list),
``spec_version`` 2.1, id syntax, duplicate ids, one producer per bundle (``created_by_ref``),
only standard TLP markings, STIX patterns (``stix2``'s grammar), our extensions against their
JSON schemas (``docs/intel-*.schema.json``), and that each of our indicators' pattern says
exactly what its extension says. Every failure is a reason in :class:`BundleRejected`, never
a traceback. Library boundary: ``stix2`` and ``jsonschema``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any

from distillguard.errors import InputError, missing_extra
from distillguard.intel.stix import (
    DG_PROJECT_IDENTITY,
    EXT_PROPERTIES,
    EXT_PSEUDONYM,
    PSEUDONYM_TYPE,
    canonical_pattern,
    load_schema,
    register,
)

__all__ = [
    "BundleRejected",
    "Limits",
    "ParsedBundle",
    "PartnerIndicator",
    "parse_bundle",
    "split_by_producer",
    "validate_objects",
]

ALLOWED_TYPES = frozenset(
    {
        "identity",
        "campaign",
        "indicator",
        "relationship",
        "sighting",
        "observed-data",
        "extension-definition",
        "marking-definition",
        "intrusion-set",
        "note",
        PSEUDONYM_TYPE,
    }
)
TLP_MARKINGS = frozenset(
    {
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",  # white
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",  # green
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",  # amber
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",  # red
    }
)
_SHARED = frozenset({DG_PROJECT_IDENTITY, EXT_PROPERTIES, EXT_PSEUDONYM}) | TLP_MARKINGS
_ID = re.compile(r"^([a-z][a-z0-9-]{1,62})--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MAX_REASONS = 20


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what a partner may send."""

    max_bytes: int = 16 * 1024 * 1024
    max_objects: int = 20_000
    max_depth: int = 16
    max_string: int = 65_536


class BundleRejected(InputError):
    """Partner content failed validation; ``reasons`` lists why (first 20), nothing was applied."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = tuple(reasons[:_MAX_REASONS])
        more = f" (and {len(reasons) - _MAX_REASONS} more)" if len(reasons) > _MAX_REASONS else ""
        super().__init__("bundle rejected: " + "; ".join(self.reasons) + more)


@dataclass(frozen=True)
class PartnerIndicator:
    """One of our-format indicators from a partner, ready for matching."""

    id: str
    source: str
    source_name: str
    kind: str
    value: str
    epoch: int
    coalition: str
    confidence: int
    valid_from: float
    valid_until: float | None
    revoked: bool
    modified: float
    minhash: tuple[int, ...] = ()
    campaign_id: str | None = None
    campaign_name: str | None = None


@dataclass(frozen=True)
class ParsedBundle:
    """Validated objects, their single producer, and the indicators we can match."""

    objects: tuple[dict[str, Any], ...]
    source: str | None
    source_name: str
    indicators: tuple[PartnerIndicator, ...]
    ignored_indicators: int


def parse_time(s: Any) -> float:
    """Return epoch seconds for a STIX timestamp; raises :class:`InputError` if malformed."""
    try:
        d = dt.datetime.fromisoformat(s.replace("Z", "+00:00") if isinstance(s, str) else "")
    except ValueError:
        raise InputError(f"{str(s)[:40]!r} is not a STIX timestamp") from None
    if d.tzinfo is None:
        raise InputError(f"{s[:40]!r} has no time zone")
    return d.timestamp()


def _depth(x: Any, limit: int) -> bool:
    stack = [(x, 1)]
    while stack:
        v, d = stack.pop()
        if d > limit:
            return False
        if isinstance(v, dict):
            stack.extend((c, d + 1) for c in v.values())
        elif isinstance(v, list):
            stack.extend((c, d + 1) for c in v)
    return True


def _long_string(x: Any, limit: int) -> bool:
    if isinstance(x, str):
        return len(x) > limit
    if isinstance(x, dict):
        return any(_long_string(k, limit) or _long_string(v, limit) for k, v in x.items())
    if isinstance(x, list):
        return any(_long_string(v, limit) for v in x)
    return False


def _schema_errors(validator: Any, doc: Any, where: str) -> list[str]:
    return [f"{where}: {e.message[:160]}" for e in validator.iter_errors(doc)][:3]


def _check_object(o: Any, i: int, validators: dict[str, Any], stix2: Any, limits: Limits) -> list[str]:
    if not isinstance(o, dict):
        return [f"object {i} is not a JSON object"]
    t, oid = o.get("type"), o.get("id")
    where = f"object {i} ({str(oid)[:80]})"
    if not isinstance(t, str) or t not in ALLOWED_TYPES:
        return [f"{where}: type {str(t)[:40]!r} is not accepted"]
    m = _ID.match(oid) if isinstance(oid, str) else None
    if m is None or m.group(1) != t:
        return [f"{where}: id must be '{t}--<uuid>'"]
    if o.get("spec_version") != "2.1":
        return [f"{where}: spec_version must be '2.1', got {str(o.get('spec_version'))[:10]!r}"]
    if _long_string(o, limits.max_string):
        return [f"{where}: a string is longer than {limits.max_string} characters"]
    if t == "marking-definition" and oid not in TLP_MARKINGS:
        return [f"{where}: only the standard TLP marking definitions are accepted"]
    errs: list[str] = []
    conf = o.get("confidence")
    if conf is not None and (not isinstance(conf, int) or isinstance(conf, bool) or not 0 <= conf <= 100):
        errs.append(f"{where}: confidence must be an integer in [0, 100], got {str(conf)[:20]}")
    refs = o.get("object_marking_refs") or []
    if not isinstance(refs, list):
        return [f"{where}: object_marking_refs must be a list"]
    for ref in refs:
        if ref not in TLP_MARKINGS:
            errs.append(f"{where}: marking {str(ref)[:80]} is not a standard TLP marking")
    exts = o.get("extensions") or {}
    if not isinstance(exts, dict):
        return [f"{where}: 'extensions' must be an object"]
    for ext_id, body in exts.items():
        if ext_id == EXT_PROPERTIES:
            errs += _schema_errors(validators["extension"], body, f"{where} extension")
        elif ext_id == EXT_PSEUDONYM:
            if t != PSEUDONYM_TYPE:
                errs.append(f"{where}: the pseudonym extension belongs on {PSEUDONYM_TYPE} only")
        else:
            errs.append(f"{where}: unknown extension {str(ext_id)[:80]}")
    if t == PSEUDONYM_TYPE:
        errs += _schema_errors(validators["pseudonym-sco"], o, where)
    if t == "indicator" and o.get("pattern_type") != "stix":
        errs.append(f"{where}: pattern_type must be 'stix'")
    if errs:
        return errs
    try:
        stix2.parse(o, allow_custom=False)
    except Exception as exc:  # stix2 raises many types; each is a reason, not a crash
        return [f"{where}: {str(exc).splitlines()[0][:200]}"]
    # stix2 fills some absent properties with defaults (valid_from = now); what we store and
    # match on is the object as sent, so its timestamps must be there and well-formed.
    stamps = ("created", "modified", "valid_from") if t == "indicator" else ()
    for name in (*stamps, *(n for n in ("valid_until",) if t == "indicator" and n in o)):
        try:
            parse_time(o.get(name))
        except InputError:
            return [f"{where}: '{name}' must be a STIX timestamp"]
    if t == "indicator" and EXT_PROPERTIES in exts:
        e = exts[EXT_PROPERTIES]
        if "pseudonym_kind" not in e:
            return [f"{where}: our extension on an indicator needs pseudonym_kind"]
        if o.get("pattern") != canonical_pattern(e["pseudonym_kind"], e["pseudonym"], e["key_epoch"]):
            return [f"{where}: the pattern does not state the pseudonym its extension carries"]
    return []


def validate_objects(objects: Any, limits: Limits | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Validate a list of STIX objects (a bundle's or a TAXII envelope's ``objects``).

    Returns the objects and their single producer (``created_by_ref``; ``None`` if none carries
    one). Raises :class:`BundleRejected` with every reason found.
    """
    lim = limits or Limits()
    if not isinstance(objects, list):
        raise BundleRejected(["'objects' must be a list"])
    if len(objects) > lim.max_objects:
        raise BundleRejected([f"{len(objects)} objects exceed the limit of {lim.max_objects}"])
    if not _depth(objects, lim.max_depth + 1):
        raise BundleRejected([f"objects are nested deeper than {lim.max_depth} levels"])
    try:
        import jsonschema
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise missing_extra("jsonschema", "intel") from exc
    from distillguard.intel.stix import _stix2

    stix2 = _stix2()
    register()
    validators = {n: jsonschema.Draft202012Validator(load_schema(n)) for n in ("extension", "pseudonym-sco")}
    reasons: list[str] = []
    seen: set[tuple[str, str]] = set()
    producers: set[str] = set()
    for i, o in enumerate(objects):
        errs = _check_object(o, i, validators, stix2, lim)
        reasons += errs
        if len(reasons) > _MAX_REASONS:
            break
        if errs:
            continue
        key = (str(o.get("id")), str(o.get("modified", "")))
        if key in seen:
            reasons.append(f"object {i}: {key[0][:80]} appears twice with the same version")
        seen.add(key)
        if o.get("id") in _SHARED:
            continue
        if o.get("type") == "identity":
            producers.add(str(o["id"]))
        elif o.get("created_by_ref") is not None:
            producers.add(str(o["created_by_ref"]))
    if len(producers) > 1:
        reasons.append(
            f"a bundle must come from one producer; found {len(producers)}: "
            + ", ".join(sorted(p[:60] for p in producers)[:3])
        )
    if reasons:
        raise BundleRejected(reasons)
    return objects, (producers.pop() if producers else None)


def parse_bundle(data: bytes | str, limits: Limits | None = None) -> ParsedBundle:
    """Validate a serialised STIX 2.1 bundle and extract the indicators we can match.

    Raises :class:`BundleRejected` (an :class:`InputError`) listing every problem found.
    """
    lim = limits or Limits()
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > lim.max_bytes:
        raise BundleRejected([f"{len(raw)} bytes exceed the limit of {lim.max_bytes}"])
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleRejected([f"not valid JSON: {str(exc)[:160]}"]) from None
    except RecursionError:
        raise BundleRejected([f"JSON nested deeper than {lim.max_depth} levels"]) from None
    if not isinstance(doc, dict) or doc.get("type") != "bundle":
        raise BundleRejected(["the top level must be a STIX bundle object ({'type': 'bundle', ...})"])
    if "spec_version" in doc:
        raise BundleRejected(
            [
                f"spec_version {str(doc['spec_version'])[:10]!r} on the bundle: this is STIX "
                "2.0 content; only STIX 2.1 is accepted"
            ]
        )
    if not isinstance(doc.get("id"), str) or not (m := _ID.match(doc["id"])) or m.group(1) != "bundle":
        raise BundleRejected(["the bundle id must be 'bundle--<uuid>'"])
    objects, source = validate_objects(doc.get("objects", []), lim)
    return _extract(objects, source)


def _extract(objects: list[dict[str, Any]], source: str | None) -> ParsedBundle:
    names = {o["id"]: str(o.get("name", "")) for o in objects if o["type"] in ("identity", "campaign")}
    camp_of: dict[str, str] = {}
    for o in objects:
        if o["type"] == "relationship" and o.get("relationship_type") == "indicates":
            camp_of[o["source_ref"]] = o["target_ref"]
    out: list[PartnerIndicator] = []
    ignored = 0
    for o in objects:
        if o["type"] != "indicator":
            continue
        e = (o.get("extensions") or {}).get(EXT_PROPERTIES)
        if e is None or "pseudonym_kind" not in e:
            ignored += 1
            continue
        cid = camp_of.get(o["id"])
        out.append(
            PartnerIndicator(
                id=o["id"],
                source=str(o.get("created_by_ref") or source or "unknown"),
                source_name=names.get(str(o.get("created_by_ref")), "")
                or str(o.get("created_by_ref") or "unknown"),
                kind=e["pseudonym_kind"],
                value=e["pseudonym"],
                epoch=int(e["key_epoch"]),
                coalition=e["coalition"],
                confidence=int(o.get("confidence", 50)),
                valid_from=parse_time(o["valid_from"]),
                valid_until=parse_time(o["valid_until"]) if o.get("valid_until") else None,
                revoked=bool(o.get("revoked", False)),
                modified=parse_time(o["modified"]),
                minhash=tuple(int(v) for v in e.get("minhash", ())),
                campaign_id=cid,
                campaign_name=names.get(cid) if cid else None,
            )
        )
    return ParsedBundle(tuple(objects), source, names.get(source, "") if source else "", tuple(out), ignored)


def split_by_producer(objects: list[Any]) -> list[dict[str, Any]]:
    """Split objects pulled from a shared collection into one bundle per producer.

    A collection holds many partners' content, but a bundle we import must come from one
    producer. Unowned objects (SCOs, the shared extension definitions and TLP markings) go with
    every producer's bundle; objects that are not even JSON objects go into a bundle of their
    own, where validation rejects them.
    """
    groups: dict[str, list[Any]] = {}
    common: list[Any] = []
    for o in objects:
        if not isinstance(o, dict):
            groups.setdefault("?", []).append(o)
        elif o.get("id") in _SHARED or o.get("type") == PSEUDONYM_TYPE:
            common.append(o)
        else:
            owner = o.get("id") if o.get("type") == "identity" else o.get("created_by_ref")
            groups.setdefault(str(owner), []).append(o)
    import uuid

    return [
        {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [*common, *objs]}
        for _, objs in sorted(groups.items())
    ]
