"""Hostile and malformed partner content: rejected with reasons, never a traceback."""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distillguard.errors import InputError
from distillguard.intel.importer import BundleRejected, Limits, parse_bundle
from distillguard.intel.stix import EXT_PROPERTIES


def _first(bundle, t):
    return next(o for o in bundle["objects"] if o["type"] == t)


def _mut(fn):
    def apply(b):
        b = copy.deepcopy(b)
        fn(b)
        return json.dumps(b)

    return apply


def _set(t, key, value):
    return _mut(lambda b: _first(b, t).__setitem__(key, value))


def _ext(key, value):
    return _mut(lambda b: _first(b, "indicator")["extensions"][EXT_PROPERTIES].__setitem__(key, value))


CASES = [
    ("not json", lambda b: "{nope", "not valid JSON"),
    ("bad utf-8", lambda b: b"\xff\xfe{}", "not valid JSON"),
    ("top-level list", lambda b: "[]", "top level"),
    ("stix 2.0 bundle", _mut(lambda b: b.__setitem__("spec_version", "2.0")), "2.0"),
    ("bad bundle id", _mut(lambda b: b.__setitem__("id", "bundle--nope")), "bundle id"),
    ("objects not a list", _mut(lambda b: b.__setitem__("objects", {"a": 1})), "must be a list"),
    (
        "deep nesting",
        lambda b: '{"type": "bundle", "objects": ' + "[" * 50_000 + "]" * 50_000 + "}",
        "nested",
    ),
    ("unknown type", _set("indicator", "type", "x-evil"), "is not accepted"),
    ("object spec 2.0", _set("indicator", "spec_version", "2.0"), "spec_version must be '2.1'"),
    (
        "id of other type",
        _set("indicator", "id", "campaign--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"),
        "id must be",
    ),
    ("invalid pattern", _set("indicator", "pattern", "[distillguard-pseudonym:kind = 'x'"), "pattern"),
    ("pattern type", _set("indicator", "pattern_type", "snort"), "pattern_type must be 'stix'"),
    ("bad timestamp", _set("indicator", "valid_from", "yesterday"), "valid_from"),
    ("bad confidence", _set("indicator", "confidence", 1000), "confidence"),
    ("extra ext property", _ext("raw_account_id", "812"), "Additional properties"),
    ("minhash of strings", _ext("minhash", ["a"] * 128), "is not of type 'integer'"),
    ("bad epoch", _ext("key_epoch", 0), "minimum"),
    ("pattern contradicts extension", _ext("pseudonym", "0" * 64), "does not state the pseudonym"),
    (
        "unknown extension",
        _mut(
            lambda b: _first(b, "indicator")["extensions"].__setitem__(
                "extension-definition--00000000-0000-4000-8000-000000000000",
                {"extension_type": "property-extension"},
            )
        ),
        "unknown extension",
    ),
    (
        "foreign marking",
        _set(
            "indicator", "object_marking_refs", ["marking-definition--00000000-0000-4000-8000-000000000000"]
        ),
        "TLP",
    ),
    (
        "two producers",
        _set("campaign", "created_by_ref", "identity--00000000-0000-4000-8000-000000000000"),
        "one producer",
    ),
    ("duplicate object", _mut(lambda b: b["objects"].append(copy.deepcopy(_first(b, "indicator")))), "twice"),
    ("huge string", _set("campaign", "description", "x" * 70_000), "longer than"),
    ("NaN", lambda b: json.dumps(b).replace('"confidence": 100', '"confidence": NaN', 1), "confidence"),
]


@pytest.mark.parametrize(("name", "make", "reason"), CASES, ids=[c[0] for c in CASES])
def test_hostile_bundle_rejected_with_reason(small_bundle, name, make, reason):
    with pytest.raises(BundleRejected) as ei:
        parse_bundle(make(small_bundle))
    assert reason in str(ei.value), str(ei.value)
    assert isinstance(ei.value, InputError) and ei.value.reasons


def test_size_limits(bundle_a):
    text = json.dumps(bundle_a)
    with pytest.raises(BundleRejected, match="bytes exceed"):
        parse_bundle(text, Limits(max_bytes=1000))
    with pytest.raises(BundleRejected, match="objects exceed"):
        parse_bundle(text, Limits(max_objects=5))
    assert parse_bundle(text).indicators


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=60,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    idx=st.integers(0, 10_000),
    key=st.sampled_from(
        [
            "type",
            "id",
            "spec_version",
            "pattern",
            "valid_from",
            "valid_until",
            "extensions",
            "created_by_ref",
            "confidence",
            "object_refs",
            "kind",
            "value",
            "minhash",
            "sighting_of_ref",
            "name",
        ]
    ),
    value=_json,
)
def test_fuzzed_fields_never_crash(small_bundle, idx, key, value):
    b = copy.deepcopy(small_bundle)
    obj = b["objects"][idx % len(b["objects"])]
    target = (
        obj["extensions"][EXT_PROPERTIES]
        if key == "minhash" and "extensions" in obj and EXT_PROPERTIES in obj["extensions"]
        else obj
    )
    target[key] = value
    try:
        parse_bundle(json.dumps(b))
    except BundleRejected as exc:
        assert exc.reasons
