"""``distillguard detect`` / ``detect-batch``: verdicts, exit codes, payload, errors."""

from __future__ import annotations

import io
import json
import os

import pytest

from distillguard.cli import main
from distillguard.watermark.keys import SecretKey, write_key_file
from distillguard.watermark.payload import account_id
from distillguard.watermark.presets import cli_scheme

pytestmark = pytest.mark.model  # text detection needs SmolLM2's tokenizer (from the GGUF)

KEY = SecretKey(bytes(range(32)))


@pytest.mark.parametrize("scheme_name", ["kgw", "gumbel"])
def test_detect_names_the_account(scheme_name, key_file, watermarked_text, tmp_path, capsys) -> None:
    # blind decoding needs every payload chunk decided: long text (KGW needs more than Gumbel,
    # and a third more again because a quarter of its tuples fall in anchor slots)
    n = 1200 if scheme_name == "kgw" else 400
    text = watermarked_text(cli_scheme(scheme_name, KEY), account_id(KEY, "acme"), n_tokens=n)
    f = tmp_path / "a.txt"
    f.write_text(text, encoding="utf-8")
    argv = [
        "detect",
        str(f),
        "--key",
        str(key_file),
        "--scheme",
        scheme_name,
        "--account",
        "acme",
        "--account",
        "bob",
    ]
    assert main([*argv, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["watermarked"] and doc["p_value"] < 1e-6 and doc["n_scored"] > 300
    assert doc["account"] == "acme" and doc["trace"]["account"] == "acme"
    assert doc["payload"]["value"] == account_id(KEY, "acme")  # blind decoding, no candidates
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "WATERMARKED" in out and "'acme'" in out and KEY.hex() not in out


def test_human_text_exits_1(key_file, tmp_path, capsys) -> None:
    f = tmp_path / "h.txt"
    f.write_text(
        "I spent the weekend repairing the old fence behind our house. The posts had rotted at the "
        "base, so my neighbour lent me his auger and we dug new holes, set the posts in gravel and "
        "rehung the panels. By Sunday evening the dog could no longer escape into the lane, which "
        "was the whole point, and we celebrated with burnt sausages and warm lemonade.",
        encoding="utf-8",
    )
    assert main(["detect", str(f), "--key", str(key_file)]) == 1
    assert "not watermarked" in capsys.readouterr().out


def test_short_text_is_honest(key_file, capsys) -> None:
    assert main(["detect", "--text", "Too short.", "--key", str(key_file), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["enough_tokens"] is False and doc["p_value"] == 1.0
    assert main(["detect", "--text", "", "--key", str(key_file)]) == 1
    assert "NOT ENOUGH TOKENS" in capsys.readouterr().out


def test_stdin_and_non_utf8(key_file, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe not text")))
    assert main(["detect", "-", "--key", str(key_file)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_key_errors_are_clear(tmp_path, capsys) -> None:
    assert main(["detect", "--text", "hello", "--key", str(tmp_path / "missing.key")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["detect", "--text", "hello"]) == 2
    assert "No watermark key" in capsys.readouterr().err
    loose = tmp_path / "loose.key"
    write_key_file(loose)
    os.chmod(loose, 0o644)
    assert main(["detect", "--text", "hello", "--key", str(loose)]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_keyring_rotation_finds_the_old_key(tmp_path, watermarked_text, capsys) -> None:
    ring = tmp_path / "ring"
    ring.mkdir()
    write_key_file(ring / "a-new.key")
    write_key_file(ring / "b-old.key", KEY)
    text = watermarked_text(cli_scheme("kgw", KEY), None, n_tokens=500)
    assert main(["detect", "--text", text, "--keyring", str(ring), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["key_id"] == KEY.key_id and "sidak over 2 keys" in doc["details"]["correction"]


def test_detect_batch(key_file, watermarked_text, tmp_path, capsys) -> None:
    marked = watermarked_text(cli_scheme("kgw", KEY), account_id(KEY, "acme"), n_tokens=300)
    lines = [
        json.dumps({"id": "w", "text": marked}),
        json.dumps(
            {
                "id": "h",
                "text": "Plain words from a person: the river was high after the storm, the "
                "ferry stopped running, and we walked the long way round over the old bridge.",
            }
        ),
        "not json",
        json.dumps({"body": "no text field"}),
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert (
        main(["detect-batch", str(src), "--key", str(key_file), "--account", "acme", "--out", str(out)]) == 0
    )
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    by_id = {r.get("id"): r for r in rows}
    assert by_id["w"]["watermarked"] and by_id["w"]["account"] == "acme"
    assert not by_id["h"]["watermarked"] and by_id["h"]["account"] is None
    assert sum("error" in r for r in rows) == 2
    assert "scanned 2 texts" in capsys.readouterr().err
