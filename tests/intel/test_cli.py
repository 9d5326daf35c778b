"""The documented command sequence (docs/intel.md), provider A to provider B through medallion."""

from __future__ import annotations

import json
import os
import stat

import pytest

from distillguard.cli import main

from .taxii_fixtures import COLLECTION, serve_medallion

pytest.importorskip("medallion")


def test_two_provider_command_sequence(tmp_path, provider_a, provider_b, monkeypatch, capsys):
    key = tmp_path / "coalition.key"
    assert main(["intel", "keygen", "--coalition", "fmf-test", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    report = tmp_path / "report.json"
    report.write_text(json.dumps(provider_a.report))
    bundle = tmp_path / "a-bundle.json"
    assert (
        main(
            [
                "intel",
                "export",
                "--report",
                str(report),
                "--logs",
                str(provider_a.logs),
                "--attributes",
                str(provider_a.attributes),
                "--key",
                str(key),
                "--producer",
                "Provider A",
                "--out",
                str(bundle),
            ]
        )
        == 0
    )
    store_b = f"sqlite:///{tmp_path / 'b.db'}"
    with serve_medallion(tmp_path, {"provider-a": "pw-a", "provider-b": "pw-b"}) as url:
        col = f"{url}/api1/collections/{COLLECTION}/"
        monkeypatch.setenv("DG_TAXII_PASSWORD", "pw-a")
        assert main(["intel", "push", str(bundle), "--url", col, "--user", "provider-a"]) == 0
        monkeypatch.setenv("DG_TAXII_PASSWORD", "pw-b")
        assert main(["intel", "pull", "--url", col, "--user", "provider-b", "--store", store_b]) == 0
        capsys.readouterr()
        risk = tmp_path / "risk.json"
        rc = main(
            [
                "intel",
                "match",
                "--logs",
                str(provider_b.logs),
                "--key",
                str(key),
                "--store",
                store_b,
                "--risk-out",
                str(risk),
                "--json",
            ]
        )
        alerts = json.loads(capsys.readouterr().out)
        assert rc == 1 and alerts
        sybils = {a for a, r in provider_b.labels.items() if r == "sybil"}
        assert len(sybils & {a["account_id"] for a in alerts}) >= 0.9 * len(sybils)
        assert json.loads(risk.read_text())["accounts"][0]["score"] > 0.5
        # A withdraws everything; B pulls the revocations and stops matching
        revoked = tmp_path / "revoked.json"
        assert main(["intel", "revoke", str(bundle), "--all", "--out", str(revoked)]) == 0
        monkeypatch.setenv("DG_TAXII_PASSWORD", "pw-a")
        assert main(["intel", "push", str(revoked), "--url", col, "--user", "provider-a"]) == 0
        monkeypatch.setenv("DG_TAXII_PASSWORD", "pw-b")
        assert main(["intel", "pull", "--url", col, "--user", "provider-b", "--store", store_b]) == 0
    assert (
        main(["intel", "match", "--logs", str(provider_b.logs), "--key", str(key), "--store", store_b]) == 0
    )


def test_key_rotation_cli(tmp_path, capsys):
    key = tmp_path / "k.json"
    assert main(["intel", "keygen", "--coalition", "fmf", "--out", str(key)]) == 0
    assert main(["intel", "keygen", "--out", str(key)]) == 2  # exists
    assert main(["intel", "keygen", "--rotate", "--out", str(key)]) == 0
    assert main(["intel", "keygen", "--rotate", "--out", str(key)]) == 0
    out = capsys.readouterr().out
    assert "epochs [2, 3]" in out
    os.chmod(key, 0o644)
    assert main(["intel", "match", "--logs", str(key), "--key", str(key)]) == 2
    assert "readable by others" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"type": "bundle", "id": "bundle--x", "objects": []}', b"\xff" * 10]
)
def test_import_rejects_with_message_not_traceback(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    assert main(["intel", "import", str(bad), "--store", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert "bundle rejected" in err and "Traceback" not in err


def test_partner_and_collection_cli(tmp_path, capsys):
    store = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["intel", "collection", "coalition", "--store", store]) == 0
    cid = capsys.readouterr().out.strip()
    tok = tmp_path / "tok"
    assert main(["intel", "partner", "b", "--read", cid, "--token-out", str(tok), "--store", store]) == 0
    assert stat.S_IMODE(tok.stat().st_mode) == 0o600 and len(tok.read_text().strip()) >= 40
    assert main(["intel", "partner", "b", "--read", cid, "--token-out", str(tok), "--store", store]) == 2
    assert (
        main(
            ["intel", "partner", "c", "--read", "nope", "--token-out", str(tmp_path / "t2"), "--store", store]
        )
        == 2
    )


def test_serve_command_answers_taxii(tmp_path):
    import subprocess
    import sys

    from .taxii_fixtures import free_port, wait_up

    store = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["intel", "collection", "coalition", "--store", store]) == 0
    tok = tmp_path / "tok"
    assert main(["intel", "partner", "p", "--token-out", str(tok), "--store", store]) == 0
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "distillguard", "intel", "serve", "--store", store, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/taxii2/", ("p", tok.read_text().strip()), proc)
        import httpx

        r = httpx.get(
            f"http://127.0.0.1:{port}/taxii2/",
            auth=("p", tok.read_text().strip()),
            headers={"Accept": "application/taxii+json;version=2.1"},
        )
        assert r.status_code == 200 and r.json()["api_roots"]
    finally:
        proc.terminate()
        proc.wait(10)
