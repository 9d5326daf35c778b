"""``distillguard scan`` and ``distillguard simulate``: API-log analysis sub-commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]


def _scan(args: argparse.Namespace) -> int:
    from distillguard.analytics.report_json import write_report
    from distillguard.analytics.scan import ScanOptions, read_allowlist, scan
    from distillguard.errors import ConfigError

    if not (0 < args.target_fpr < 0.5):
        raise ConfigError(f"--target-fpr must be in (0, 0.5). Got {args.target_fpr} instead.")
    allow = read_allowlist(Path(args.allowlist)) if args.allowlist else frozenset()
    opts = ScanOptions(
        engine=args.engine,
        target_fpr=args.target_fpr,
        allowlist=allow,
        recognise_benchmarks=not args.no_benchmarks,
        progress=not args.quiet,
        quarantine=Path(args.quarantine) if args.quarantine else None,
        reference=tuple(args.reference or ()),
        embeddings=args.embeddings,
    )
    report = scan(args.logs, opts)
    write_report(report, Path(args.out))
    if args.html:
        from distillguard.analytics.report_html import write_html

        write_html(report, Path(args.html))
    s, sk = report["summary"], report["skipped"]
    print(
        f"{s['events']:,} events, {s['accounts']:,} accounts: {s['flagged_accounts']} flagged, "
        f"{s['flagged_campaigns']}/{s['campaigns']} campaigns flagged; {sk['total']} lines quarantined "
        f"{sk['by_reason'] or ''}; report {args.out}",
        file=sys.stderr,
    )
    return 1 if s["flagged_accounts"] else 0


def _simulate(args: argparse.Namespace) -> int:
    from distillguard.analytics.simulate import SimConfig, simulate

    cfg = SimConfig(
        n_benign=args.benign, days=args.days, holdout=args.holdout, holdout2=args.holdout2, seed=args.seed
    )
    res = simulate(Path(args.out), cfg)
    print(
        f"wrote {res.n_events:,} events from {res.n_accounts} accounts to {res.log_path} "
        f"(labels {res.labels_path}, allowlist {res.allowlist_path})"
    )
    return 0


def register(subparsers: Any) -> None:
    """Add ``scan`` and ``simulate``."""
    p = subparsers.add_parser(
        "scan",
        help="find extraction accounts and campaigns in API request logs",
        description="Scan request logs (JSONL, Parquet, sqlite:///db, postgresql://) "
        "and write report.json. Exit 1 when an account is flagged.",
    )
    p.add_argument("logs", nargs="+", help="log files or database URLs (table request_log)")
    p.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    p.add_argument("--out", required=True, help="report.json path")
    p.add_argument("--html", help="also write an HTML report with plots")
    p.add_argument("--allowlist", help="file of allowlisted (research-tier) account ids, one a line")
    p.add_argument(
        "--target-fpr", type=float, default=1e-3, help="benign-account false-positive rate (default 0.001)"
    )
    p.add_argument(
        "--reference",
        action="append",
        metavar="LOG",
        help="log of known-benign accounts to calibrate the flag line on (repeatable); "
        "default: a tail fit on the scanned population",
    )
    p.add_argument(
        "--embeddings",
        choices=["none", "minilm"],
        default="none",
        help="topic coverage from MiniLM sentence embeddings (slow: see docs/analytics.md)",
    )
    p.add_argument("--quarantine", help="where bad lines go (default: a temporary file)")
    p.add_argument(
        "--no-benchmarks", action="store_true", help="do not recognise HumanEval prompts as evaluation"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_scan)
    s = subparsers.add_parser(
        "simulate",
        help="write a labelled synthetic API log",
        description="Write requests.jsonl, labels.csv and allowlist.txt to --out.",
    )
    s.add_argument("--out", required=True, help="output directory")
    s.add_argument("--benign", type=int, default=400, help="benign accounts (default 400)")
    s.add_argument("--days", type=float, default=7.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--holdout", action="store_true", help="add attacker variants unseen during development")
    s.add_argument(
        "--holdout2",
        action="store_true",
        help="add a second held-out set of attacker variants (roles holdout2_*)",
    )
    s.set_defaults(func=_simulate)
