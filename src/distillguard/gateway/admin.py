"""Admin API (``/admin/...``, admin token required) and the dashboard page.

Actions (block / unblock / allowlist / rotate key / import risk) are recorded in the
``actions`` table with the reason given by the operator.
"""


from dataclasses import asdict
from typing import Any

from fastapi import FastAPI, Request

from distillguard.gateway.policy import OnlineScorer
from distillguard.gateway.store import Store

__all__ = ["add_admin_routes", "dashboard_html"]

_ACTIONS = ("block", "unblock", "allowlist", "unallowlist", "rotate_key", "set_risk", "canary")


def add_admin_routes(app: FastAPI, st: Store, scorer: OnlineScorer, admin_dep: Any) -> None:
    """Register the admin endpoints on ``app``; ``admin_dep`` is the token dependency type."""
    from distillguard.gateway.app import ApiError

    async def _body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError(400, "request body must be a JSON object") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return body

    def _acc(account_id: str) -> dict[str, Any]:
        acc = st.get_account(account_id)
        if acc is None:
            raise ApiError(404, f"no account {account_id!r}", code="account_not_found")
        risk, reasons = scorer.score(account_id)
        return {**asdict(acc), "live_risk": risk, "reasons": list(reasons)}

    @app.get("/admin/accounts")
    async def list_accounts(_: admin_dep) -> dict[str, Any]:
        """Accounts with their live risk and reasons."""
        return {"data": [_acc(a.account_id) for a in st.list_accounts()]}

    @app.post("/admin/accounts", status_code=201)
    async def create_account(request: Request, _: admin_dep) -> dict[str, Any]:
        """Create an account (``{"name", "tier"?}``) and its first key (shown once)."""
        body = await _body(request)
        name, tier = body.get("name"), body.get("tier", "standard")
        if not isinstance(name, str) or not isinstance(tier, str):
            raise ApiError(400, "'name' and 'tier' must be strings", param="name")
        acc = st.create_account(name, tier)
        key, secret = st.create_key(acc.account_id)
        st.record_action(acc.account_id, "create", f"created with tier {tier}", "admin")
        return {"account": asdict(acc), "key_id": key.key_id, "api_key": secret}

    @app.get("/admin/accounts/{account_id}")
    async def get_account(account_id: str, _: admin_dep) -> dict[str, Any]:
        """One account with keys, actions and its recent requests (timeline)."""
        return {**_acc(account_id), "keys": [asdict(k) for k in st.list_keys(account_id)],
                "actions": st.list_actions(account_id), "requests": st.recent_log(account_id, 500)}

    @app.post("/admin/accounts/{account_id}/keys", status_code=201)
    async def create_key(account_id: str, _: admin_dep) -> dict[str, Any]:
        """Add a key to an account (shown once)."""
        key, secret = st.create_key(account_id)
        return {"key_id": key.key_id, "api_key": secret}

    @app.delete("/admin/keys/{key_id}")
    async def revoke_key(key_id: str, _: admin_dep) -> dict[str, Any]:
        """Revoke a key."""
        st.revoke_key(key_id)
        return {"revoked": key_id}

    @app.post("/admin/accounts/{account_id}/actions")
    async def act(account_id: str, request: Request, _: admin_dep) -> dict[str, Any]:
        """Apply ``{"action", "reason", "risk"?}``; action is one of :data:`_ACTIONS`."""
        body = await _body(request)
        action, reason = body.get("action"), body.get("reason") or "operator action"
        if action not in _ACTIONS or not isinstance(reason, str):
            raise ApiError(400, f"'action' must be one of {list(_ACTIONS)} and 'reason' a string",
                           param="action")
        _acc(account_id)
        out: dict[str, Any] = {}
        if action in ("block", "unblock"):
            st.update_account(account_id, status="blocked" if action == "block" else "active")
        elif action in ("allowlist", "unallowlist"):
            st.update_account(account_id, tier="research" if action == "allowlist" else "standard")
        elif action == "rotate_key":
            for k in st.list_keys(account_id):
                if k.revoked_at is None:
                    st.revoke_key(k.key_id)
            key, secret = st.create_key(account_id)
            out = {"key_id": key.key_id, "api_key": secret}
        elif action == "canary":
            out = {"canary_enrolled": app.state.canaries.enroll(account_id)}
        else:
            risk = body.get("risk")
            if not isinstance(risk, (int, float)) or isinstance(risk, bool) or not 0 <= risk <= 1:
                raise ApiError(400, "'risk' must be a number in [0, 1]", param="risk")
            st.update_account(account_id, risk=float(risk))
            scorer.imported[account_id] = float(risk)
        st.record_action(account_id, action, reason, "admin")
        return {**_acc(account_id), **out}

    @app.get("/admin/actions")
    async def actions(_: admin_dep) -> dict[str, Any]:
        """Recent actions (all accounts)."""
        return {"data": st.list_actions()}

    @app.get("/admin/campaigns")
    async def campaigns(_: admin_dep) -> dict[str, Any]:
        """Campaigns imported from scan reports (members and the evidence linking them)."""
        return {"data": st.list_campaigns()}

    @app.get("/admin/alerts")
    async def alerts(_: admin_dep) -> dict[str, Any]:
        """Band escalations, canary enrolments and imported risk, newest first."""
        return {"data": st.list_alerts()}

    @app.post("/admin/scan-report")
    async def import_scan_report(request: Request, _: admin_dep) -> dict[str, Any]:
        """Import a ``distillguard scan`` report.json: account risk and campaigns."""
        report = await _body(request)
        updated = st.import_risk(report, actor="scan")
        for row in report["accounts"]:  # live risk on the dashboard reflects the import at once
            acc = st.get_account(row["account_id"])
            if acc is not None:
                scorer.imported[acc.account_id] = acc.risk
        return {"accounts_updated": updated, "campaigns": len(report.get("campaigns") or [])}

    @app.get("/admin/traffic")
    async def traffic(_: admin_dep) -> dict[str, Any]:
        """Recent requests across accounts (the live view)."""
        return {"data": st.recent_log(None, 300)}


def dashboard_html() -> str:
    """Return the self-contained dashboard page (no external assets)."""
    from importlib.resources import files

    return files("distillguard.gateway").joinpath("dashboard.html").read_text(encoding="utf-8")
