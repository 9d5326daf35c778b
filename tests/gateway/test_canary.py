"""Canary mode: enrolled accounts get their own canary sentence; others get nothing extra."""

from __future__ import annotations

import json
import sqlite3
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


async def test_style_canaries_rewrite_json_and_stream_alike(gw: Gw, monkeypatch: pytest.MonkeyPatch) -> None:
    from distillguard.fingerprint.style import rewrite_style
    from distillguard.gateway.backends import FakeBackend

    # both variants of style families (and "it is", which contracts before a word): whatever the
    # account's random bits, its answers get touched
    monkeypatch.setattr(FakeBackend, "_WORDS", ("color", "colour", "organize", "organise", "it", "is",
                                                "gray", "grey"))
    acc, hdr = await gw.account("styled")
    _, plain_hdr = await gw.account("plain")
    gw.app.state.canaries.enroll(acc)
    bits = gw.app.state.canaries.registry.style_bits()[acc]
    body = {**_chat("zzqx style probe"), "max_tokens": 40}
    plain = (await gw.client.post("/v1/chat/completions", json=body, headers=plain_hdr)).json()
    plain_text = plain["choices"][0]["message"]["content"]
    assert {"color", "colour"} <= set(plain_text.split())
    styled = (await gw.client.post("/v1/chat/completions", json=body, headers=hdr)).json()
    styled_text = styled["choices"][0]["message"]["content"]
    assert styled_text == rewrite_style(plain_text, bits) != plain_text
    # (a plain post reads the whole stream: the app has finished, and logged, when it returns)
    r = await gw.client.post("/v1/chat/completions", json={**body, "stream": True}, headers=hdr)
    pieces = [json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
              for line in r.text.splitlines() if line.startswith("data: {")]
    assert len(pieces) > 10 and "".join(pieces) == styled_text
    gw.app.state.writer.flush()
    con = sqlite3.connect(Path(gw.app.state.settings.store_url[len("sqlite:///"):]))
    served = [r[0] for r in con.execute("SELECT response FROM request_log WHERE account_id = ?", (acc,))]
    con.close()
    assert served == [styled_text, styled_text]  # the log keeps the text as served


def test_a_registry_from_before_style_canaries_is_brought_up_to_date(tmp_path: Path) -> None:
    from distillguard.gateway.canary import CanaryService, load_registry
    from distillguard.watermark import SecretKey

    key, path = SecretKey(bytes(range(32))), tmp_path / "canaries.json"
    CanaryService(key, path).enroll("acct-a")
    doc = json.loads(path.read_text(encoding="utf-8"))
    del doc["registry"]["style"]  # as an older gateway wrote it
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert load_registry(path).style == ()
    service = CanaryService(key, path)  # the gateway restarts on the new version
    assert load_registry(path).style_bits() == service.registry.style_bits() != {}


def test_a_registry_gains_decoys_but_never_changes_a_served_canary(tmp_path: Path) -> None:
    from distillguard.errors import InputError
    from distillguard.fingerprint.canaries import CanaryConfig
    from distillguard.gateway.canary import CanaryService, load_registry
    from distillguard.watermark import SecretKey

    key, path = SecretKey(bytes(range(32))), tmp_path / "canaries.json"
    CanaryService(key, path, config=CanaryConfig(decoys=200)).enroll("acct-a")
    before = load_registry(path)
    CanaryService(key, path)  # restarted with the default, more decoys
    after = load_registry(path)
    assert after.for_account("acct-a") == before.for_account("acct-a")
    assert len(after.decoys) == 2000 and set(before.decoys) <= set(after.decoys)
    # fewer canaries per account would re-derive what was served: refused, file untouched
    text = path.read_text(encoding="utf-8")
    with pytest.raises(InputError, match="served canaries would change"):
        CanaryService(key, path, config=CanaryConfig(per_account=10))
    assert path.read_text(encoding="utf-8") == text
