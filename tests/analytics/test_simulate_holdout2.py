"""The second held-out attacker set of the simulator (``SimConfig.holdout2``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from distillguard.analytics.log_record import LogRecord, validate_record
from distillguard.analytics.simulate import SimConfig, simulate
from distillguard.errors import ConfigError

ROLES = {"holdout2_tree": 3, "holdout2_replay": 4, "holdout2_judge": 6}


def _read(res_dir: Path) -> tuple[list[dict[str, str]], list[str]]:
    with open(res_dir / "labels.csv", newline="", encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    # Split on "\n" only: prompts may hold U+2028 and the like, which splitlines() would cut at.
    lines = (res_dir / "requests.jsonl").read_text(encoding="utf-8").split("\n")[:-1]
    return labels, lines


def test_holdout2_adds_labelled_valid_accounts_and_leaves_the_rest_unchanged(tmp_path: Path) -> None:
    cfg = {"n_benign": 10, "days": 2.0, "n_sybil": 3, "n_hydra": 2, "holdout": True, "seed": 5}
    simulate(tmp_path / "base", SimConfig(**cfg))
    res = simulate(tmp_path / "h2", SimConfig(holdout2=True, **cfg))
    labels, lines = _read(tmp_path / "h2")
    base_labels, base_lines = _read(tmp_path / "base")

    h2 = {lab["account_id"]: lab for lab in labels if lab["role"].startswith("holdout2_")}
    counts = {r: sum(lab["role"] == r for lab in h2.values()) for r in ROLES}
    assert counts == ROLES
    assert all(res.roles[r] == n for r, n in ROLES.items())
    for lab in h2.values():  # several accounts act as one: each variant is one campaign
        assert lab["campaign_id"] == "camp-h2-" + lab["role"].removeprefix("holdout2_")

    per_account: dict[str, int] = {}
    for line in lines:
        rec = json.loads(line)
        assert isinstance(validate_record(rec), LogRecord), line[:200]
        if rec["account_id"] in h2:
            assert "prompt" in rec or "messages" in rec
            per_account[rec["account_id"]] = per_account.get(rec["account_id"], 0) + 1
    assert set(per_account) == set(h2)
    assert all(50 <= n <= 5000 for n in per_account.values()), per_account

    # Everyone else's traffic and labels are exactly what they are without holdout2.
    assert labels[: len(base_labels)] == base_labels
    assert [ln for ln in lines if json.loads(ln)["account_id"] not in h2] == base_lines


def test_holdout2_is_seeded(tmp_path: Path) -> None:
    cfg = SimConfig(n_benign=5, days=1.0, n_sybil=2, n_hydra=1, holdout2=True, seed=11)
    simulate(tmp_path / "a", cfg)
    simulate(tmp_path / "b", cfg)
    for name in ("requests.jsonl", "labels.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_holdout2_must_be_a_bool() -> None:
    with pytest.raises(ConfigError, match="holdout2"):
        SimConfig(holdout2=1)  # type: ignore[arg-type]
