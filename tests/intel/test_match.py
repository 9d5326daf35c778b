import dataclasses
import json
import time

import pytest

from distillguard.intel.importer import parse_bundle
from distillguard.intel.logsource import read_activity
from distillguard.intel.match import MatchConfig, is_live, match, risk_input
from distillguard.intel.pseudonym import CoalitionKey, KeyRing

ATTACK = {"sybil", "hydra", "naive_fast", "low_slow", "cot", "logprob", "paraphrase"}


@pytest.fixture(scope="module")
def indicators(bundle_a):
    return parse_bundle(json.dumps(bundle_a)).indicators


@pytest.fixture(scope="module")
def activity_b(provider_b):
    return read_activity([str(provider_b.logs)], provider_b.attributes)


def test_b_campaign_accounts_alerted_under_other_names(indicators, activity_b, provider_b, ring):
    alerts = match(indicators, activity_b, ring, now=time.time())
    hit = {a.account_id for a in alerts}
    roles = provider_b.labels
    sybils = [a for a, r in roles.items() if r == "sybil"]
    hydras = [a for a, r in roles.items() if r == "hydra"]
    assert sum(a in hit for a in sybils) >= 0.9 * len(sybils)
    assert sum(a in hit for a in hydras) >= 0.75 * len(hydras)
    # benign users, app backends, the benchmark runner and the lab are not accused
    assert sum(roles[a] not in ATTACK for a in hit) <= 1, [
        a.reason for a in alerts if roles[a.account_id] not in ATTACK
    ]
    # B's account names and addresses never appeared at A: the evidence is the template
    # (and for sybils the shared e-mail domain), not an identifier A saw.
    syb = next(a for a in alerts if a.account_id == sybils[0])
    assert {e.kind for e in syb.evidence} <= {"template", "email-domain"}
    assert "template signature (J=" in syb.reason and "Provider A" in syb.reason


def test_same_identifiers_match_exactly(indicators, provider_a, ring):
    act_a = read_activity([str(provider_a.logs)], provider_a.attributes)
    alerts = {a.account_id: a for a in match(indicators, act_a, ring, now=time.time())}
    some = next(a for a, r in provider_a.labels.items() if r == "sybil" and a in alerts)
    kinds = {e.kind for e in alerts[some].evidence}
    assert {"account", "payment", "ip-prefix"} <= kinds


def _shift(inds, **kw):
    return [dataclasses.replace(i, **kw) for i in inds]


def test_expired_and_revoked_stop_matching(indicators, activity_b, ring):
    now = time.time()
    assert match(indicators, activity_b, ring, now)
    latest_end = max(i.valid_until for i in indicators if i.valid_until)
    assert match(indicators, activity_b, ring, now=latest_end + 1) == []
    assert not is_live(indicators[0], indicators[0].valid_from - 1)
    revoked = _shift(indicators, revoked=True, modified=now + 10)
    # the old versions are still there; the newer revoking version wins
    assert match([*indicators, *revoked], activity_b, ring, now) == []


def test_epochs(indicators, activity_b):
    old = CoalitionKey("fmf-test", 1, bytes(range(32)))
    new = CoalitionKey("fmf-test", 2, bytes(range(1, 33)))
    assert match(indicators, activity_b, KeyRing([old, new]), time.time())
    assert match(indicators, activity_b, KeyRing([new]), time.time()) == []
    foreign = KeyRing([CoalitionKey("other", 1, bytes(range(32)))])
    assert match(indicators, activity_b, foreign, time.time()) == []


def test_threshold_and_weak_evidence(indicators, activity_b, ring):
    # B shares no identifier with A: without template evidence, the shared e-mail domain of its
    # sybils (strength 0.3) stays below the alert threshold on its own.
    no_templates = MatchConfig(strengths={"template": 0.0, "ip-prefix": 0.45, "email-domain": 0.3})
    assert match(indicators, activity_b, ring, time.time(), no_templates) == []
    with pytest.raises(Exception, match="must be in"):
        MatchConfig(alert_threshold=0.0)


def test_risk_input_feeds_the_gateway(indicators, activity_b, ring, tmp_path):
    from distillguard.gateway.store import open_store

    alerts = match(indicators, activity_b, ring, time.time())
    risk = risk_input(alerts)
    assert risk["accounts"] and all(0 < r["score"] <= 1 and r["reasons"] for r in risk["accounts"])
    st = open_store(f"sqlite:///{tmp_path / 'gw.db'}")
    top = risk["accounts"][0]
    st.create_account("x", account_id=top["account_id"])
    assert st.import_risk(risk, actor="intel") == 1
    acc = st.get_account(top["account_id"])
    assert acc is not None and acc.risk >= 0.75
    st.close()
