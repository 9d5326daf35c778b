import csv
import json
import sqlite3

import pytest

from distillguard.analytics.scan import ScanOptions, read_allowlist, scan
from distillguard.analytics.simulate import SimConfig, simulate
from distillguard.cli import main
from distillguard.errors import InputError

ATTACK_ROLES = {"naive_fast", "low_slow", "cot", "logprob", "sybil", "hydra", "paraphrase"}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    res = simulate(out, SimConfig(n_benign=150, days=3, n_sybil=12, n_hydra=4, seed=7))
    with open(res.labels_path, encoding="utf-8") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    return res, labels


@pytest.fixture(scope="module")
def report(sim):
    res, _ = sim
    return scan([str(res.log_path)], ScanOptions(allowlist=read_allowlist(res.allowlist_path)))


def test_report_shape(report):
    assert set(report) == {"accounts", "campaigns", "skipped", "summary"}
    a = report["accounts"][0]
    assert {"account_id", "score", "flagged", "campaign_id", "reasons"} <= set(a)
    assert all(0 <= x["score"] <= 1 for x in report["accounts"])
    json.dumps(report)


def test_attackers_flagged_and_legit_heavy_users_not(sim, report):
    _, labels = sim
    by = {a["account_id"]: a for a in report["accounts"]}
    attackers = [a for a, lab in labels.items() if lab["role"] in ATTACK_ROLES]
    assert sum(by[a]["flagged"] for a in attackers) >= 0.95 * len(attackers)
    for acct in ("app0", "app1", "evalrunner", "lab-research"):
        assert not by[acct]["flagged"], by[acct]
    assert by["lab-research"]["score"] >= 0.5  # scored, reported, not flagged
    benign = [a for a, lab in labels.items() if lab["role"] == "benign"]
    assert sum(by[a]["flagged"] for a in benign) <= 2


def test_sybil_members_assigned_to_one_campaign(sim, report):
    _, labels = sim
    by = {a["account_id"]: a for a in report["accounts"]}
    sybils = [a for a, lab in labels.items() if lab["role"] == "sybil"]
    cids = [by[a]["campaign_id"] for a in sybils]
    top = max(set(cids), key=cids.count)
    assert top is not None and cids.count(top) >= 0.9 * len(sybils)
    camp = next(c for c in report["campaigns"] if c["campaign_id"] == top)
    assert camp["flagged"] and camp["reasons"]


def test_bad_lines_quarantined_and_counted(tmp_path, sim):
    res, _ = sim
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'nope\n{"ts": 1, "account_id": "a", "prompt": "x"}\n\xff\n')
    q = tmp_path / "q.jsonl"
    rep = scan([str(res.log_path), str(bad)], ScanOptions(quarantine=q))
    assert rep["skipped"]["total"] == 3
    assert rep["skipped"]["by_reason"] == {"bad_timestamp": 1, "invalid_json": 1, "invalid_utf8": 1}
    assert len(q.read_text().splitlines()) == 3


def test_sqlite_and_parquet_sources(tmp_path):
    db = tmp_path / "g.db"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE request_log (ts TEXT, account_id TEXT, prompt TEXT, messages TEXT, params TEXT)"
    )
    rows = [
        (
            f"2026-02-01T00:{i % 60:02d}:00Z",
            f"a{i % 7}",
            f"question number {i} about things",
            None,
            '{"temperature": 0.5}',
        )
        for i in range(200)
    ]
    rows.append(("2026-02-01T00:00:00Z", "m", None, '[{"role": "user", "content": "hey"}]', None))
    rows.append(("garbage", "m", "p", None, None))
    con.executemany("INSERT INTO request_log VALUES (?, ?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    rep = scan([f"sqlite:///{db}"])
    assert rep["summary"]["events"] == 201 and rep["skipped"]["by_reason"] == {"bad_timestamp": 1}
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table(
            {
                "ts": [1769940000.0 + i for i in range(50)],
                "account_id": ["p"] * 50,
                "prompt": [f"hi {i}" for i in range(50)],
            }
        ),
        tmp_path / "l.parquet",
    )
    assert scan([str(tmp_path / "l.parquet")])["summary"]["events"] == 50


def test_missing_source_is_clear_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        scan([str(tmp_path / "nope.jsonl")])


def test_cli_scan_and_simulate(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path / "s"), "--benign", "40", "--days", "2"]) == 0
    rc = main(
        [
            "scan",
            str(tmp_path / "s" / "requests.jsonl"),
            "--out",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "r.html"),
            "--allowlist",
            str(tmp_path / "s" / "allowlist.txt"),
            "--quiet",
        ]
    )
    assert rc == 1  # attackers present
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["flagged_accounts"] > 0
    assert "<img" in (tmp_path / "r.html").read_text()
    assert main(["scan", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
