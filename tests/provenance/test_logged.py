"""Suspect queries from the request log: the prompts one account sent (pure, no model)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from distillguard.errors import InputError
from distillguard.provenance.logged import logged_prompts, read_logged_prompts


def rec(ts: float, account: str, text: str, **extra: object) -> dict[str, object]:
    return {"ts": ts, "account_id": account, "messages": [{"role": "user", "content": text}], **extra}


def test_keeps_one_accounts_successful_prompts_oldest_first_once_each() -> None:
    rows: list[dict[str, Any]] = [
        rec(1_800_000_030, "x", "third"),
        rec(1_800_000_010, "x", "first"),
        rec(1_800_000_020, "y", "not x"),
        rec(1_800_000_020, "x", "second"),
        rec(1_800_000_040, "x", "first"),  # a repeat is one query, not two
        rec(1_800_000_050, "x", "refused", status=429),
        {"ts": 1_800_000_060, "account_id": "x", "prompt": "plain completion"},
        {"ts": "yesterday", "account_id": "x", "prompt": "bad time"},
        {
            "ts": 1_800_000_070,
            "account_id": "x",
            "messages": [
                {"role": "user", "content": "turn 1"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "turn 2"}]},
            ],
        },
    ]
    got = logged_prompts(rows, "x")
    assert got.prompts == ("first", "second", "third", "plain completion", "turn 2")
    assert (got.n_requests, got.n_failed, got.n_rejected) == (6, 1, 1)


def test_unknown_account_names_the_logs_accounts() -> None:
    with pytest.raises(InputError, match="'y'"):
        logged_prompts([rec(1_800_000_000, "y", "hi")], "x")
    with pytest.raises(InputError, match="no successful request"):
        logged_prompts([rec(1_800_000_000, "x", "hi", status=500)], "x")


def test_reads_jsonl_and_gzip_and_counts_garbage_lines(tmp_path) -> None:
    lines = [json.dumps(rec(1_800_000_000 + i, "x", f"p{i}")) for i in range(3)] + ["not json", "[1]"]
    plain = tmp_path / "log.jsonl"
    plain.write_text("\n".join(lines) + "\n\n")
    packed = tmp_path / "log.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    for path in (plain, packed):
        got = read_logged_prompts(path, "x")
        assert got.prompts == ("p0", "p1", "p2") and got.n_rejected == 2
    with pytest.raises(InputError, match="Cannot read request log"):
        read_logged_prompts(tmp_path / "missing.jsonl", "x")
