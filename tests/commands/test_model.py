"""``distillguard generate``: JSONL output that ``detect`` reads back, and clear errors."""

from __future__ import annotations

import json

import pytest

from distillguard.cli import main


def test_generate_needs_a_prompt(key_file, capsys) -> None:
    assert main(["generate", "--key", str(key_file)]) == 2
    assert "No prompt given" in capsys.readouterr().err


def test_account_needs_a_watermark(capsys) -> None:
    assert main(["generate", "--no-watermark", "--account", "acme", "--prompt", "hi"]) == 2
    assert "--account needs a watermark" in capsys.readouterr().err


def test_watermark_needs_a_key(capsys) -> None:
    assert main(["generate", "--prompt", "hi"]) == 2
    assert "No watermark key" in capsys.readouterr().err


def test_bad_prompts_file_line(key_file, tmp_path, capsys) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"nothing": 1}\n', encoding="utf-8")
    assert main(["generate", "--key", str(key_file), "--prompts-file", str(f)]) == 2
    assert "expected a 'prompt' or 'messages' field" in capsys.readouterr().err


@pytest.mark.model
def test_generate_jsonl_round_trips_through_detect(key_file, tmp_path, capsys) -> None:
    prompts = tmp_path / "p.txt"
    prompts.write_text(
        'Name three rivers in Europe.\n{"messages": [{"role": "user", "content": "Say hello."}]}\n',
        encoding="utf-8",
    )
    out = tmp_path / "gen.jsonl"
    argv = [
        "generate",
        "--key",
        str(key_file),
        "--account",
        "acme",
        "--prompts-file",
        str(prompts),
        "--max-new-tokens",
        "24",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2
    for r in rows:
        assert r["text"] and r["watermarked"] and r["scheme"] == "kgw" and r["account"] == "acme"
        assert isinstance(r["payload_id"], int) and r["completion_tokens"] <= 24
        assert r["finish_reason"] in ("stop", "length")
    capsys.readouterr()
    # 24 tokens are too few for a verdict at 1e-6; the point is that detect reads the output.
    assert main(["detect-batch", str(out), "--key", str(key_file), "--account", "acme"]) == 0
    results = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in results] == [1, 2] and all("p_value" in r for r in results)


@pytest.mark.model
def test_generate_control_prints_text(capsys) -> None:
    assert (
        main(["generate", "--no-watermark", "--prompt", "Say hi.", "--max-new-tokens", "8", "--seed", "0"])
        == 0
    )
    assert capsys.readouterr().out.strip()
