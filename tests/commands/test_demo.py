"""``distillguard demo`` (``make demo``) and ``distillguard eval``, run small."""

from __future__ import annotations

import pytest

from distillguard.cli import main

pytestmark = pytest.mark.model


def test_demo_prints_the_table(capsys) -> None:
    argv = ["demo", "--answers", "2", "--controls", "1", "--max-new-tokens", "24"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for needle in (
        "SmolLM2 + watermark",
        "SmolLM2, no watermark",
        "human (ShareGPT user)",
        "ChatGPT (ShareGPT)",
        "acme-research",
        "globex-labs",
        "p-value",
        "5. gateway",
        "6. scan",
        "imported into the gateway",
    ):
        assert needle in out
    assert "Traceback" not in out


def test_eval_small_run(tmp_path, capsys) -> None:
    argv = [
        "eval",
        "watermark",
        "--prompts",
        "2",
        "--max-new-tokens",
        "24",
        "--human",
        "30",
        "--overhead-tokens",
        "2",
        "--overhead-batches",
        "1",
        "--cache",
        str(tmp_path),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for needle in ("Detection rate at FPR", "False positives", "Account payload", "Generation overhead"):
        assert needle in out
    assert len(list(tmp_path.glob("eval-*.jsonl"))) == 3  # kgw, gumbel, plain cached
