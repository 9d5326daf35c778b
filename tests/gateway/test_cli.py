"""The ``accounts`` / ``keys`` admin commands and ``serve`` argument handling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_accounts_and_keys_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    from distillguard.cli import main
    from distillguard.gateway.store import open_store

    monkeypatch.setenv("DISTILLGUARD_HOME", str(tmp_path))
    assert main(["accounts", "create", "acme", "--tier", "research"]) == 0
    created = json.loads(capsys.readouterr().out.splitlines()[0])
    assert created["api_key"].startswith("dg-")
    acct = created["account_id"]
    assert main(["keys", "create", acct]) == 0
    second = json.loads(capsys.readouterr().out)
    assert main(["keys", "list", acct]) == 0
    listed = capsys.readouterr().out
    assert second["key_id"] in listed and second["api_key"] not in listed
    assert main(["keys", "revoke", second["key_id"]]) == 0
    assert main(["accounts", "block", acct, "--reason", "test"]) == 0
    st = open_store(f"sqlite:///{tmp_path / 'gateway.db'}")
    acc = st.get_account(acct)
    assert acc is not None and acc.status == "blocked" and acc.tier == "research"
    assert st.authenticate(second["api_key"]) is None
    assert st.list_actions(acct)[0]["reason"] == "test"
    assert main(["keys", "revoke", "key_missing"]) == 2
    assert "no key 'key_missing'" in capsys.readouterr().err
