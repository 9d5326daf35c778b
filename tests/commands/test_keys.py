from __future__ import annotations

from distillguard.cli import main
from distillguard.watermark.keys import load_key_file


def test_keygen_cli(tmp_path, capsys) -> None:
    path = tmp_path / "cli.key"
    assert main(["keygen", "--out", str(path)]) == 0
    out = capsys.readouterr().out
    key = load_key_file(path)
    assert key.key_id in out and key.hex() not in out
    assert main(["keygen", "--out", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["keygen", "--out", str(path), "--force"]) == 0
