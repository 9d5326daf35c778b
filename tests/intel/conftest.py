"""Two simulated providers: A scans and exports, B has the same campaigns under other names and IPs."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from distillguard.intel.pseudonym import CoalitionKey, KeyRing

pytest.importorskip("stix2")

KEY = CoalitionKey("fmf-test", 1, bytes(range(32)))
SIM = {"n_benign": 120, "days": 3, "n_sybil": 10, "n_hydra": 4}


@dataclass
class Provider:
    logs: Path
    labels: dict[str, str]
    attributes: Path
    report: dict[str, Any] | None = None


def _attributes(path: Path, labels: dict[str, str], prefix: str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["account_id", "email", "payment_fingerprint"])
        for acct, role in labels.items():
            email = "ops@sybil-farm.test" if role == "sybil" else f"{acct}@mail-{acct}.example"
            w.writerow([prefix + acct, email, f"pm_{prefix}{acct}_card"])


def _make(root: Path, seed: int, rename: str) -> Provider:
    from distillguard.analytics.simulate import SimConfig, simulate

    res = simulate(root, SimConfig(seed=seed, **SIM))
    with open(res.labels_path, encoding="utf-8") as fh:
        labels = {rename + r["account_id"]: r["role"] for r in csv.DictReader(fh)}
    logs = root / "requests.jsonl"
    if rename:
        rows = [json.loads(line) for line in res.log_path.read_text(encoding="utf-8").split("\n") if line]
        for r in rows:
            r["account_id"] = rename + r["account_id"]
        logs = root / "renamed.jsonl"
        logs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    attrs = root / "attributes.csv"
    _attributes(attrs, {a.removeprefix(rename): r for a, r in labels.items()}, rename)
    return Provider(logs, labels, attrs)


@pytest.fixture(scope="session")
def ring() -> KeyRing:
    return KeyRing([KEY])


@pytest.fixture(scope="session")
def provider_a(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    from distillguard.analytics.scan import ScanOptions, scan

    p = _make(tmp_path_factory.mktemp("provider-a"), 7, "")
    p.report = scan([str(p.logs)], ScanOptions(allowlist=frozenset({"lab-research"})))
    return p


@pytest.fixture(scope="session")
def provider_b(tmp_path_factory: pytest.TempPathFactory) -> Provider:
    return _make(tmp_path_factory.mktemp("provider-b"), 8, "b-")


@pytest.fixture(scope="session")
def findings_a(provider_a: Provider, ring: KeyRing) -> list[Any]:
    from distillguard.intel.findings import build_findings
    from distillguard.intel.logsource import read_activity

    act = read_activity([str(provider_a.logs)], provider_a.attributes)
    assert provider_a.report is not None
    return build_findings(provider_a.report, act, ring, now=time.time())


@pytest.fixture(scope="session")
def bundle_a(findings_a: list[Any], ring: KeyRing) -> dict[str, Any]:
    from distillguard.intel.stix import Producer, build_bundle

    return build_bundle(findings_a, Producer("Provider A", ring.coalition), time.time())


@pytest.fixture(scope="session")
def small_bundle(findings_a: list[Any], ring: KeyRing) -> dict[str, Any]:
    """One lone account's finding with a template: quick to parse, every object type present."""
    from distillguard.intel.stix import Producer, build_bundle

    f = next(f for f in findings_a if f.n_accounts == 1 and any(s.kind == "template" for s in f.indicators))
    return build_bundle([f], Producer("Provider A", ring.coalition), time.time())
