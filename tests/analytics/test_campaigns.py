import pytest

from distillguard.analytics.campaigns import LinkConfig, find_candidates
from distillguard.errors import ConfigError


def _links(acct, tpls=(), ip24=None, ua=None):
    out = [{"account_id": acct, "kind": "tpl", "value": t, "c": 3} for t in tpls]
    if ip24:
        out.append({"account_id": acct, "kind": "ip24", "value": ip24, "c": 5})
    if ua:
        out.append({"account_id": acct, "kind": "ua", "value": ua, "c": 5})
    return out


def test_shared_templates_and_ip_ua_link_accounts():
    links = []
    for i in range(4):
        links += _links(f"s{i}", tpls=["T1"] if i < 2 else [], ip24="10.0.0", ua="bot/1")
    links += _links("lonely", tpls=["T9"], ip24="10.0.0", ua="Other/2")
    for i in range(30):
        links += _links(f"b{i}", tpls=[f"own{i}"], ip24=f"20.{i}.1", ua="Browser")
    cands = find_candidates(links, n_accounts=35)
    assert len(cands) == 1
    assert cands[0].accounts == ("s0", "s1", "s2", "s3") and cands[0].campaign_id == "C001"
    assert any("10.0.0.x" in e for e in cands[0].evidence)


def test_template_common_to_many_accounts_links_nothing():
    links = []
    for i in range(50):
        links += _links(f"b{i}", tpls=["i want you to"])
    assert find_candidates(links, n_accounts=50, config=LinkConfig(max_share=0.2)) == []


def test_a_template_links_only_accounts_that_run_it():
    # Three members each send it on most requests; a replayer of other people's prompts (600
    # requests) shares a few openings, each with two people who use it now and then: with the
    # shares, the members form the campaign and the replayer chains no strangers.
    links = [{"account_id": f"m{i}", "kind": "tpl", "value": "T", "c": 40} for i in range(3)]
    requests = {f"m{i}": 60 for i in range(3)} | {"replayer": 600}
    for k in range(4):
        links.append({"account_id": "replayer", "kind": "tpl", "value": f"open{k}", "c": 3})
        for j in range(2):
            links.append({"account_id": f"p{k}{j}", "kind": "tpl", "value": f"open{k}", "c": 2})
            requests[f"p{k}{j}"] = 10
    cands = find_candidates(links, 100, requests_of=requests)
    assert [c.accounts for c in cands] == [("m0", "m1", "m2")]
    chained = find_candidates(links, 100)  # without the shares: one component of strangers
    assert sorted(len(c.accounts) for c in chained) == [3, 9]
    assert find_candidates(links, 100, LinkConfig(min_template_share=0.0), requests_of=requests) == chained


def test_config_validation():
    with pytest.raises(ConfigError, match="min_template_share"):
        LinkConfig(min_template_share=1.0)
    with pytest.raises(ConfigError, match="min_size"):
        LinkConfig(min_size=1)
