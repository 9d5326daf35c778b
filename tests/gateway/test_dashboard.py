"""The dashboard in headless Chromium: connect with the token, see accounts, block one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.gateway.conftest import ADMIN, make_settings
from tests.gateway.test_server import Server

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
def test_dashboard_lists_accounts_and_blocks(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from distillguard.gateway.app import create_app

    app = create_app(make_settings(tmp_path))
    acc = app.state.store.create_account("suspicious-lab")
    app.state.store.import_risk({"accounts": [{"account_id": acc.account_id, "score": 0.8, "flagged": True,
                                               "reasons": ["92% of prompts share 3 templates"]}],
                                 "campaigns": [{"campaign_id": "camp-1", "score": 0.97,
                                                "accounts": [acc.account_id, "acct_other"],
                                                "reasons": ["shared template signature"]}]}, actor="scan")
    srv = Server(app)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync"])
            page = browser.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(srv.url) else None)
            page.goto(srv.url + "/dashboard")
            page.fill("#token", "wrong-token-xxxxxxxxxxxxxxxx")
            page.click("#connect")
            expect(page.locator("#err")).to_contain_text("invalid admin token")
            page.fill("#token", ADMIN)
            page.click("#connect")
            expect(page.locator("tr[data-campaign='camp-1']")).to_contain_text("shared template signature")
            expect(page.locator("#alerts tbody")).to_contain_text("92% of prompts share 3 templates")
            row = page.locator(f"tr[data-id='{acc.account_id}']")
            expect(row).to_contain_text("suspicious-lab")
            row.locator("button[data-act='block']").click()
            expect(page.locator(f"tr[data-id='{acc.account_id}'] td.status")).to_have_text("blocked")
            expect(page.locator("#actions tbody")).to_contain_text("block")
            browser.close()
        assert outside == []
        blocked = app.state.store.get_account(acc.account_id)
        assert blocked is not None and blocked.status == "blocked"
    finally:
        srv.stop()
