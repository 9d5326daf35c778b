"""OpenAI-compatible endpoints, errors, auth, logging and policy through the ASGI app."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

pytestmark = pytest.mark.anyio
MODEL = "smollm2-135m-instruct"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}


def varied(i: int) -> dict:
    """A chat body whose prompt is not a template of the others (letters differ, not digits)."""
    word = chr(97 + i % 26) + chr(97 + i // 26 % 26) + chr(97 + i // 676 % 26)
    return {**CHAT, "messages": [{"role": "user", "content": f"tell me about {word}"}]}


async def test_chat_completion_and_log_row(gw) -> None:
    acct, hdr = await gw.account()
    r = await gw.client.post("/v1/chat/completions", json=CHAT, headers=hdr)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["object"] == "chat.completion"
    assert len(j["choices"][0]["message"]["content"].split()) == 5
    assert j["usage"]["completion_tokens"] == 5
    gw.app.state.writer.flush()
    st = gw.app.state.store
    assert st.count_log(acct) == 1
    row = st.recent_log(acct)[0]
    assert row["status"] == 200 and row["endpoint"] == "/v1/chat/completions"


async def test_log_rows_are_canonical_records(gw, tmp_path) -> None:
    from distillguard.analytics.log_record import FIELDS, LogRecord, validate_record

    acct, hdr = await gw.account()
    body = {"model": MODEL, "prompt": "x 1", "max_tokens": 3}
    await gw.client.post("/v1/completions", json=body, headers=hdr)
    gw.app.state.writer.flush()
    con = sqlite3.connect(tmp_path / "gw.db")
    con.row_factory = sqlite3.Row
    raw = dict(con.execute("SELECT * FROM request_log").fetchone())
    rec = {k: raw[k] for k in FIELDS if raw[k] is not None}
    rec["params"] = json.loads(rec["params"])
    got = validate_record(rec)
    assert isinstance(got, LogRecord), got
    assert got.account_id == acct and got.prompt == "x 1" and got.params["max_tokens"] == 3


async def test_streaming_chunks_end_with_done(gw) -> None:
    acct, hdr = await gw.account()
    r = await gw.client.post("/v1/chat/completions", json={**CHAT, "stream": True}, headers=hdr)
    assert r.status_code == 200
    lines = [ln for ln in r.text.split("\n\n") if ln.strip()]
    assert lines[-1] == "data: [DONE]"
    pieces = [json.loads(ln[6:])["choices"][0]["delta"].get("content") for ln in lines[:-1]]
    text = "".join(p for p in pieces if p)
    assert len(text.split()) == 5
    gw.app.state.writer.flush()
    assert gw.app.state.store.count_log(acct) == 1


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b"{not json", 400, "not valid JSON"),
    (b"\xff\xfe{}", 400, "UTF-8"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({**CHAT, "model": "gpt-9"}).encode(), 404, "does not exist"),
    (json.dumps({**CHAT, "max_tokens": "5"}).encode(), 400, "max_tokens"),
    (json.dumps({**CHAT, "messages": "hi"}).encode(), 400, "messages"),
    (json.dumps({**CHAT, "temperature": 9}).encode(), 400, "temperature"),
    (json.dumps(CHAT).encode()[:-1] + b', "temperature": NaN}', 400, "temperature"),
    (json.dumps({**CHAT, "n": 2}).encode(), 400, "n=1"),
    (b"{" + b'"a":"' + b"x" * 1_100_000 + b'"}', 413, "larger than"),
])
async def test_bad_input_is_4xx_openai_error(gw, body, status, fragment) -> None:
    _, hdr = await gw.account()
    r = await gw.client.post("/v1/chat/completions", content=body,
                             headers={**hdr, "content-type": "application/json"})
    assert r.status_code == status
    err = r.json()["error"]
    assert fragment in err["message"] and set(err) == {"message", "type", "param", "code"}


async def test_auth_required_and_revocation(gw) -> None:
    assert (await gw.client.post("/v1/chat/completions", json=CHAT)).status_code == 401
    bad = {"Authorization": "Bearer dg-nope"}
    assert (await gw.client.get("/v1/models", headers=bad)).status_code == 401
    acct, hdr = await gw.account()
    assert (await gw.client.get("/v1/models", headers=hdr)).json()["data"][0]["id"] == MODEL
    key_id = gw.app.state.store.list_keys(acct)[0].key_id
    assert (await gw.client.delete(f"/admin/keys/{key_id}", headers=gw.admin)).status_code == 200
    assert (await gw.client.get("/v1/models", headers=hdr)).status_code == 401


async def test_admin_needs_token_and_user_key_is_not_admin(gw) -> None:
    _, hdr = await gw.account()
    for h in ({}, hdr, {"Authorization": "Bearer wrong-token-xxxxxxxxxxxx"}):
        assert (await gw.client.get("/admin/accounts", headers=h)).status_code == 401
        r = await gw.client.post("/admin/accounts", json={"name": "evil"}, headers=h)
        assert r.status_code == 401
    assert len(gw.app.state.store.list_accounts()) == 1


async def test_rate_limit_per_key_returns_429(gw) -> None:
    _, hdr = await gw.account()
    codes = [(await gw.client.post("/v1/chat/completions", json=varied(i), headers=hdr)).status_code
             for i in range(55)]
    assert codes[:50] == [200] * 50
    assert set(codes[50:]) == {429}


async def test_one_account_does_not_consume_anothers_limit(gw) -> None:
    _, h1 = await gw.account("a")
    _, h2 = await gw.account("b")
    statuses = [(await gw.client.post("/v1/chat/completions", json=varied(i), headers=h1)).status_code
                for i in range(55)]
    # A sliding-window counter: exact within a minute; across a minute boundary the previous
    # minute's share is weighted, which can admit one or two extra requests, never more.
    assert statuses[:50] == [200] * 50 and statuses[-3:] == [429] * 3
    assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=h2)).status_code == 200


async def test_block_and_allowlist_actions_are_recorded(gw) -> None:
    acct, hdr = await gw.account()
    r = await gw.client.post(f"/admin/accounts/{acct}/actions", json={"action": "block", "reason": "abuse"},
                             headers=gw.admin)
    assert r.status_code == 200 and r.json()["status"] == "blocked"
    r = await gw.client.post("/v1/chat/completions", json=CHAT, headers=hdr)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_blocked"
    await gw.client.post(f"/admin/accounts/{acct}/actions", json={"action": "unblock"}, headers=gw.admin)
    assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=hdr)).status_code == 200
    acts = [a["action"] for a in gw.app.state.store.list_actions(acct)]
    assert acts[:2] == ["unblock", "block"]


async def test_imported_risk_blocks_standard_but_not_research(gw) -> None:
    acct, hdr = await gw.account("s")
    res, hdr_r = await gw.account("r", tier="research")
    for a in (acct, res):
        r = await gw.client.post(f"/admin/accounts/{a}/actions", json={"action": "set_risk", "risk": 0.95,
                                 "reason": "scan report"}, headers=gw.admin)
        assert r.status_code == 200
    assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=hdr)).status_code == 403
    assert (await gw.client.post("/v1/chat/completions", json=CHAT, headers=hdr_r)).status_code == 200
    reasons = [a["reason"] for a in gw.app.state.store.list_actions(acct) if a["action"] == "band:block"]
    assert reasons and "imported risk" in reasons[0]


async def test_templated_burst_with_logprobs_is_cut_off(gw) -> None:
    acct, hdr = await gw.account()
    body = {**CHAT, "logprobs": True}
    codes = []
    for i in range(40):
        msg = [{"role": "user", "content": f"Explain topic number {i} in detail."}]
        codes.append((await gw.client.post("/v1/chat/completions", json={**body, "messages": msg},
                                           headers=hdr)).status_code)
    assert codes[0] == 200 and 403 in codes
    # 40 requests in well under 8 s: rate >= 5/s saturates; 39/40 normalised prompts repeat;
    # every request asks for logprobs -> risk = 0.4 + 0.4 * 0.975 + 0.2 > 0.9 (block band).
    risk, reasons = gw.app.state.scorer.score(acct)
    assert risk >= 0.9 and any("template" in r for r in reasons)
    assert [a for a in gw.app.state.store.list_actions(acct) if a["action"] == "band:block"]


async def test_healthz_metrics_dashboard(gw) -> None:
    assert (await gw.client.get("/healthz")).json()["status"] == "ok"
    assert "dg_requests" in (await gw.client.get("/metrics")).text
    page = (await gw.client.get("/dashboard")).text
    assert "<script>" in page and "http" not in page.split("<script>")[1].split("fetch(")[0]


async def test_scan_report_import_feeds_campaigns_alerts_and_risk(gw: Any) -> None:
    acc, _ = await gw.account("farm-1")
    report = {"accounts": [{"account_id": acc, "score": 0.9, "flagged": True, "reasons": ["templated"]},
                           {"account_id": "acct_unknown", "score": 0.99, "flagged": True}],
              "campaigns": [{"campaign_id": "c1", "score": 0.95, "accounts": [acc, "acct_unknown"],
                             "reasons": ["shared /24 and template"]}]}
    r = await gw.client.post("/admin/scan-report", json=report, headers=gw.admin)
    assert r.status_code == 200 and r.json() == {"accounts_updated": 1, "campaigns": 1}
    camps = (await gw.client.get("/admin/campaigns", headers=gw.admin)).json()["data"]
    assert camps[0]["campaign_id"] == "c1" and camps[0]["accounts"] == [acc, "acct_unknown"]
    alerts = (await gw.client.get("/admin/alerts", headers=gw.admin)).json()["data"]
    assert any(a["account_id"] == acc and "templated" in a["reason"] for a in alerts)
    got = (await gw.client.get(f"/admin/accounts/{acc}", headers=gw.admin)).json()
    assert got["live_risk"] == pytest.approx(0.9)
    bad = await gw.client.post("/admin/scan-report", json={"campaigns": "x", "accounts": []},
                               headers=gw.admin)
    assert bad.status_code == 400
    assert (await gw.client.post("/admin/scan-report", json=report)).status_code == 401
