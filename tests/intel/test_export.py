import csv
import ipaddress
import json
import re
from pathlib import Path

import pytest

from distillguard.intel.importer import parse_bundle
from distillguard.intel.stix import EXT_PROPERTIES, EXT_PSEUDONYM, load_schema

ROOT = Path(__file__).resolve().parents[2]


def _raw_identifiers(logs: Path, attributes: Path):
    accounts, ips, prompts = set(), set(), set()
    for line in filter(None, logs.read_text(encoding="utf-8").split("\n")):
        r = json.loads(line)
        accounts.add(r["account_id"])
        ips.add(r["ip"])
        prompts.add(r.get("prompt") or r["messages"][-1]["content"])
    with open(attributes, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    emails = {r["email"] for r in rows}
    return accounts, ips, prompts, emails, {r["payment_fingerprint"] for r in rows}


def test_bundle_leaks_no_raw_identifier(provider_a, bundle_a):
    text = json.dumps(bundle_a)
    lower = text.lower()
    accounts, ips, prompts, emails, payments = _raw_identifiers(provider_a.logs, provider_a.attributes)
    # The bundle is not empty: it describes the flagged groups with every kind of pseudonym.
    kinds = {o["kind"] for o in bundle_a["objects"] if o["type"] == "distillguard-pseudonym"}
    assert kinds == {"account", "ip-prefix", "email-domain", "payment", "template"}
    for acct in accounts:
        assert not re.search(rf"(?<![0-9a-z_-]){re.escape(acct.lower())}(?![0-9a-z_-])", lower), acct
    for ip in ips:
        net = ipaddress.ip_network(f"{ip}/24", strict=False)
        assert ip not in text and str(net) not in text and str(net.network_address)[:-2] not in text, ip
    for e in emails:
        assert e.lower() not in lower and e.split("@")[1].lower() not in lower, e
    for p in payments:
        assert p.lower() not in lower, p
    for p in prompts:
        norm = " ".join(p.lower().split())
        if len(norm) >= 16:  # "hi", "ok": too short to be anyone's prompt in particular
            assert norm[:24] not in lower, p[:40]
    # nor the recurring framings themselves
    for frame in ("detailed tutorial", "as an expert", "step by step", "thorough overview"):
        assert frame not in lower


def test_bundle_is_valid_stix_and_reimports(bundle_a):
    parsed = parse_bundle(json.dumps(bundle_a))
    types = {o["type"] for o in parsed.objects}
    assert {
        "identity",
        "campaign",
        "indicator",
        "observed-data",
        "sighting",
        "relationship",
        "marking-definition",
        "extension-definition",
    } <= types
    assert parsed.source_name == "Provider A"
    assert parsed.indicators and all(i.campaign_id for i in parsed.indicators)
    for o in parsed.objects:
        if o["type"] == "indicator":
            assert o["pattern_type"] == "stix" and o["valid_until"] > o["valid_from"]
            assert 0 <= o["confidence"] <= 100
            assert o["object_marking_refs"]
            assert EXT_PROPERTIES in o["extensions"]
        if o["type"] == "indicator" and o["extensions"][EXT_PROPERTIES]["pseudonym_kind"] == "template":
            assert all(0 <= v < 2**53 for v in o["extensions"][EXT_PROPERTIES]["minhash"])
        if o["type"] == "campaign":
            profile = o["extensions"][EXT_PROPERTIES]["profile"]
            assert {"gap_cv", "distinct_ratio", "offtemp_share", "requests_per_active_hour"} <= set(profile)
        if o["type"] == "distillguard-pseudonym":
            assert o["extensions"] == {EXT_PSEUDONYM: {"extension_type": "new-sco"}}


def test_schemas_in_docs_are_the_packaged_ones():
    assert json.loads((ROOT / "docs" / "intel-extension.schema.json").read_text()) == load_schema("extension")
    assert json.loads((ROOT / "docs" / "intel-pseudonym-sco.schema.json").read_text()) == load_schema(
        "pseudonym-sco"
    )


def test_export_is_deterministic_per_finding(provider_a, ring):
    from distillguard.intel.findings import build_findings
    from distillguard.intel.logsource import read_activity
    from distillguard.intel.stix import Producer, build_bundle

    act = read_activity([str(provider_a.logs)])
    f = build_findings(provider_a.report, act, ring, now=1.8e9)
    b1 = build_bundle(f, Producer("Provider A", ring.coalition), 1.8e9)
    b2 = build_bundle(f, Producer("Provider A", ring.coalition), 1.8e9 + 60)
    ids1 = {o["id"] for o in b1["objects"]}
    assert ids1 == {o["id"] for o in b2["objects"]}
    mod = {o["id"]: o.get("modified") for o in b2["objects"] if o["type"] == "indicator"}
    assert all(o["modified"] < mod[o["id"]] for o in b1["objects"] if o["type"] == "indicator")


def test_allowlisted_and_benign_accounts_are_not_exported(provider_a, ring):
    from distillguard.intel.findings import build_findings
    from distillguard.intel.logsource import read_activity

    act = read_activity([str(provider_a.logs)])
    f = build_findings(provider_a.report, act, ring, now=1.8e9)
    shared = {s.value for x in f for s in x.indicators if s.kind == "account"}
    for acct, role in provider_a.labels.items():
        p = ring.current.pseudonym("account", acct)
        if role in ("benign", "app_backend", "benchmark", "research_lab"):
            assert p not in shared, acct
    assert (
        sum(
            ring.current.pseudonym("account", a) in shared
            for a, r in provider_a.labels.items()
            if r == "sybil"
        )
        >= 9
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"accounts": "x"},
        {"accounts": [{"flagged": True}], "campaigns": []},
        [],
        {"accounts": [{"account_id": "a", "flagged": True, "score": "high"}], "campaigns": []},
        {"accounts": [], "campaigns": [{"campaign_id": "C1", "flagged": True, "score": 7}]},
    ],
)
def test_malformed_report(bad, ring):
    from distillguard.errors import InputError
    from distillguard.intel.findings import build_findings

    with pytest.raises(InputError):
        build_findings(bad, {}, ring, now=0.0)


def test_odd_feature_values_do_not_break_export(provider_a, ring):
    import copy

    from distillguard.intel.findings import build_findings
    from distillguard.intel.logsource import read_activity

    rep = copy.deepcopy(provider_a.report)
    for a in rep["accounts"]:
        a["features"] = {"n_requests": "many", "span_hours": None} if a["flagged"] else "n/a"
    act = read_activity([str(provider_a.logs)])
    f = build_findings(rep, act, ring, now=1.8e9)
    assert f and all(x.profile == {} for x in f)
