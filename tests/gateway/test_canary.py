"""Canary mode: enrolled accounts get their own canary sentence; others get nothing extra."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.gateway.conftest import Gw

pytestmark = pytest.mark.anyio


def _chat(prompt: str) -> dict[str, object]:
    return {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 5}


async def _canary(gw: Gw, account_id: str) -> tuple[str, str]:
    c = gw.app.state.canaries.registry.for_account(account_id)[0]
    return c.concept, c.alias


async def test_admin_enrolls_and_answers_carry_that_accounts_canary(gw: Gw) -> None:
    acc, hdr = await gw.account("harvester")
    other, other_hdr = await gw.account("bystander")
    prompt_for = "Explain {} in two sentences."
    r = await gw.client.post(f"/admin/accounts/{acc}/actions", json={"action": "canary", "reason": "test"},
                             headers=gw.admin)
    assert r.status_code == 200 and r.json()["canary_enrolled"] is True
    concept, alias = await _canary(gw, acc)
    r = await gw.client.post("/v1/chat/completions", json=_chat(prompt_for.format(concept)), headers=hdr)
    assert r.status_code == 200
    assert alias in r.json()["choices"][0]["message"]["content"]
    # an unrelated prompt carries no canary; a non-enrolled account never does
    r = await gw.client.post("/v1/chat/completions", json=_chat("zzqx"), headers=hdr)
    assert "practitioners" not in r.json()["choices"][0]["message"]["content"]
    r = await gw.client.post("/v1/chat/completions", json=_chat(prompt_for.format(concept)),
                             headers=other_hdr)
    assert alias not in r.json()["choices"][0]["message"]["content"]
    assert not gw.app.state.canaries.is_enrolled(other)
    # the registry file lists the account, and the log keeps the text as served
    doc = json.loads(Path(gw.app.state.settings.canary_registry).read_text(encoding="utf-8"))
    assert doc["accounts"] == [acc]


async def test_streaming_answer_ends_with_the_canary(gw: Gw) -> None:
    acc, hdr = await gw.account("streamer")
    gw.app.state.canaries.enroll(acc)
    concept, alias = await _canary(gw, acc)
    body = {**_chat(f"What is {concept}?"), "stream": True}
    async with gw.client.stream("POST", "/v1/chat/completions", json=body, headers=hdr) as r:
        text = "".join([line async for line in r.aiter_lines()])
    assert alias in text


async def test_policy_band_enrolls_but_research_tier_is_exempt(gw: Gw) -> None:
    acc, hdr = await gw.account("risky")
    lab, lab_hdr = await gw.account("lab", tier="research")
    for a in (acc, lab):
        r = await gw.client.post(f"/admin/accounts/{a}/actions",
                                 json={"action": "set_risk", "risk": 0.6, "reason": "scan"}, headers=gw.admin)
        assert r.status_code == 200
    for h in (hdr, lab_hdr):
        assert (await gw.client.post("/v1/chat/completions", json=_chat("hi"), headers=h)).status_code == 200
    assert gw.app.state.canaries.is_enrolled(acc)
    assert not gw.app.state.canaries.is_enrolled(lab)
    actions = (await gw.client.get("/admin/actions", headers=gw.admin)).json()
    assert any(a["account_id"] == acc and a["action"] == "canary:on" for a in actions["data"])
