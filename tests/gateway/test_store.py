"""The store as the analytics side reads it, text retention, and key handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.gateway.conftest import ADMIN, make_settings

MODEL = "smollm2-135m-instruct"


@pytest.mark.parametrize("retain", [True, False])
def test_scan_ingest_reads_the_gateway_store(tmp_path: Path, retain: bool) -> None:
    from fastapi.testclient import TestClient

    from distillguard.analytics.ingest import ingest
    from distillguard.gateway.app import create_app

    app = create_app(make_settings(tmp_path, retain_text=retain))
    acc = app.state.store.create_account("a")
    key = app.state.store.create_key(acc.account_id)[1]
    secret_prompt = "my very private prompt"
    with TestClient(app) as c:
        for _ in range(3):
            r = c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                       json={"model": MODEL, "messages": [{"role": "user", "content": secret_prompt}]})
            assert r.status_code == 200
        c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, content=b"{bad")
    res = ingest([f"sqlite:///{tmp_path / 'gw.db'}"], tmp_path / "scan")
    assert res.accepted == 4 and sum(res.skipped.values()) == 0
    raw = (tmp_path / "gw.db").read_bytes() + (tmp_path / "gw.db-wal").read_bytes() \
        if (tmp_path / "gw.db-wal").exists() else (tmp_path / "gw.db").read_bytes()
    assert (secret_prompt.encode() in raw) is retain


def test_keys_are_stored_hashed_and_shown_once(tmp_path: Path) -> None:
    from distillguard.gateway.store import hash_key, open_store

    st = open_store(f"sqlite:///{tmp_path / 'k.db'}")
    acc = st.create_account("a")
    row, secret = st.create_key(acc.account_id)
    assert secret.startswith("dg-") and len(secret) > 40
    assert secret.encode() not in (tmp_path / "k.db").read_bytes() + (
        (tmp_path / "k.db-wal").read_bytes() if (tmp_path / "k.db-wal").exists() else b"")
    assert hash_key(secret) != secret
    found = st.authenticate(secret)
    assert found is not None and found[1].account_id == acc.account_id
    assert st.authenticate(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    st.revoke_key(row.key_id)
    assert st.authenticate(secret) is None


def test_settings_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from distillguard.errors import ConfigError
    from distillguard.gateway.settings import load_settings

    monkeypatch.setenv("DISTILLGUARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DISTILLGUARD_REQUESTS_PER_MINUTE", "77")
    cfg = tmp_path / "gw.toml"
    cfg.write_text(f'admin_token = "{ADMIN}"\nretain_text = false\n')
    s = load_settings(cfg)
    assert s.requests_per_minute == 77 and s.retain_text is False and s.admin_token == ADMIN
    cfg.write_text('nonsense = 1\n')
    with pytest.raises(ConfigError, match="unknown gateway config keys"):
        load_settings(cfg)
    monkeypatch.delenv("DISTILLGUARD_REQUESTS_PER_MINUTE")
    generated = load_settings()  # no token anywhere: one is generated into a 0600 file
    token_file = tmp_path / "home" / "admin_token"
    assert generated.admin_token == token_file.read_text() and token_file.stat().st_mode & 0o777 == 0o600


def test_import_risk_from_scan_report(tmp_path: Path) -> None:
    from distillguard.errors import InputError
    from distillguard.gateway.store import open_store

    st = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    a, b = st.create_account("a"), st.create_account("b")
    report = {"accounts": [
        {"account_id": a.account_id, "score": 0.3, "flagged": True, "reasons": ["templated prompts"]},
        {"account_id": b.account_id, "score": 0.2, "flagged": False, "reasons": []},
        {"account_id": "acct_unknown", "score": 0.99, "flagged": True},
    ]}
    assert st.import_risk(report) == 2
    got_a, got_b = st.get_account(a.account_id), st.get_account(b.account_id)
    assert got_a is not None and got_a.risk == 0.75 and got_b is not None and got_b.risk == 0.2
    assert "templated prompts" in st.list_actions(a.account_id)[0]["reason"]
    for bad in ({}, {"accounts": [{"score": 1}]}, {"accounts": [{"account_id": "x", "score": "hi"}]}):
        with pytest.raises(InputError):
            st.import_risk(bad)
