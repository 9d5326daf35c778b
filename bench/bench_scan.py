"""Benchmark ``distillguard scan``: detection quality on the simulator, and speed.

Quality: a development simulation (seed 0) and a held-out one (seed 1, plus two attacker
variants never used while building the scorer), flagged at the threshold calibrated for the
target benign FPR. Speed: a simulation's JSONL tiled to N events (accounts renamed per tile,
plus a few hundred bad lines), scanned end to end (ingest with validation and quarantine,
enrichment, account features, scoring, campaigns) in a subprocess whose peak RSS is reported;
the naive ">1,000 requests/hour" rule as a plain Python loop over the same JSONL; the cost of
MiniLM topic embeddings; optionally the same scan on Spark local mode for a prefix.
Run:  .venv/bin/python bench/bench_scan.py [--events 10000000] [--spark-events 1000000]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table, write_section

from distillguard.analytics.scan import ScanOptions, read_allowlist, scan
from distillguard.analytics.simulate import SimConfig, simulate

ATTACK = {
    "naive_fast",
    "low_slow",
    "cot",
    "logprob",
    "sybil",
    "hydra",
    "paraphrase",
    "holdout_json",
    "holdout_ring",
}


def auroc(scores: list[float], labels: list[bool]) -> float:
    s, y = np.asarray(scores), np.asarray(labels)
    pos, neg = s[y], s[~y]
    gt = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(gt / (len(pos) * len(neg)))


def naive_rule(log: Path) -> tuple[set[str], float]:
    t0 = time.perf_counter()
    per: dict[tuple[str, int], int] = defaultdict(int)
    with open(log, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                ev = json.loads(line)
                per[(ev["account_id"], int(float(ev["ts"]) // 3600))] += 1
            except (ValueError, KeyError, TypeError):
                continue  # the rule's own quarantine: skip what it cannot read
    flagged = {a for (a, _h), c in per.items() if c > 1000}
    return flagged, time.perf_counter() - t0


def quality(tmp: Path, seed: int, holdout: bool, n_benign: int) -> tuple[str, list[list[object]]]:
    res = simulate(tmp / f"q{seed}", SimConfig(n_benign=n_benign, seed=seed, holdout=holdout))
    with open(res.labels_path, encoding="utf-8") as fh:
        labels = {r["account_id"]: r for r in csv.DictReader(fh)}
    rep = scan([str(res.log_path)], ScanOptions(allowlist=read_allowlist(res.allowlist_path)))
    naive, _ = naive_rule(res.log_path)
    by = {a["account_id"]: a for a in rep["accounts"]}
    roles: dict[str, list[str]] = defaultdict(list)
    for a, lab in labels.items():
        roles[lab["role"]].append(a)
    rows: list[list[object]] = []
    for role, accts in sorted(roles.items()):
        rows.append(
            [
                role,
                len(accts),
                f"{sum(by[a]['flagged'] for a in accts)}/{len(accts)}",
                f"{sum(a in naive for a in accts)}/{len(accts)}",
            ]
        )
    att = [a for a, lab in labels.items() if lab["role"] in ATTACK]
    ben = roles["benign"]
    camp_members = [a for a, lab in labels.items() if lab["campaign_id"]]
    assigned = 0
    for cid in {labels[a]["campaign_id"] for a in camp_members}:
        mem = [a for a in camp_members if labels[a]["campaign_id"] == cid]
        got = Counter(by[a]["campaign_id"] for a in mem if by[a]["campaign_id"])
        assigned += got.most_common(1)[0][1] if got else 0
    scored = [a for a in labels if labels[a]["role"] in ATTACK or labels[a]["role"] == "benign"]
    au = auroc([by[a]["score"] for a in scored], [labels[a]["role"] in ATTACK for a in scored])
    summary = (
        f"{rep['summary']['events']:,} events, {len(labels)} accounts. Threshold: "
        f"{rep['summary']['threshold']['how']}. Attackers flagged "
        f"{sum(by[a]['flagged'] for a in att)}/{len(att)}; benign FPR "
        f"{sum(by[a]['flagged'] for a in ben)}/{len(ben)}; campaign members assigned to their campaign "
        f"{assigned}/{len(camp_members)}; AUROC (attackers vs benign) {au:.4f}; naive rule flags "
        f"{sum(a in naive for a in att)}/{len(att)} attackers and {sum(a in naive for a in ben)} benign."
    )
    return summary, rows


def time_to_detect(tmp: Path) -> list[list[object]]:
    res = simulate(tmp / "ttd", SimConfig(n_benign=1000, seed=2))
    events = [json.loads(x) for x in res.log_path.read_text(encoding="utf-8").split("\n") if x]
    rows: list[list[object]] = []
    for acct in ("a-fast", "a-slow", "a-cot", "a-logprob", "a-para"):
        first = None
        for k in (25, 50, 100, 200):
            kept, seen = [], 0
            for ev in events:
                if ev["account_id"] == acct:
                    seen += 1
                    if seen > k:
                        continue
                elif ev["account_id"].startswith(("a-", "s", "h", "x-")):
                    continue  # a pure extractor alone among benign and legit-heavy users
                kept.append(ev)
            p = tmp / f"ttd_{acct}_{k}.jsonl"
            p.write_text("".join(json.dumps(e) + "\n" for e in kept), encoding="utf-8")
            rep = scan([str(p)])
            if next(a for a in rep["accounts"] if a["account_id"] == acct)["flagged"]:
                first = k
                break
        rows.append([acct, first if first else "> 200"])
    return rows


def tile_jsonl(src: Path, dst: Path, n_events: int, n_bad: int = 500) -> int:
    """Write ``src`` repeated (account ids suffixed per tile) to ``dst`` up to ``n_events`` lines,
    plus ``n_bad`` malformed lines; return the number of lines written."""
    # split("\n"), not splitlines(): a prompt may hold U+2028 and other Unicode line breaks.
    lines = [x for x in src.read_text(encoding="utf-8").split("\n") if x]
    reps = max(1, n_events // len(lines))
    written = 0
    with open(dst, "w", encoding="utf-8") as fh:
        for r in range(reps):
            tag = f'~{r}", '
            fh.write("\n".join(x.replace('", ', tag, 1) if '"account_id"' in x[:60] else x for x in lines))
            fh.write("\n")
            written += len(lines)
        bad = ['{"ts": "soon", "account_id": "b", "prompt": "x"}', "{not json", '{"ts": 1769904000}']
        for i in range(n_bad):
            fh.write(bad[i % len(bad)] + "\n")
    return written + n_bad


_SCAN_CHILD = """
import json, sys, time
from pathlib import Path
from distillguard.analytics.scan import ScanOptions, scan
t0 = time.perf_counter()
opts = ScanOptions(engine=sys.argv[2], embeddings=sys.argv[3], quarantine=Path(sys.argv[4]))
rep = scan([sys.argv[1]], opts)
print(json.dumps({"seconds": time.perf_counter() - t0, "summary": rep["summary"], "skipped": rep["skipped"]}))
"""


def _scan_child(log: Path, engine: str, embeddings: str, quarantine: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", _SCAN_CHILD, str(log), engine, embeddings, str(quarantine)],
        capture_output=True,
        text=True,
        check=True,
    )
    res: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return res


def speed(tmp: Path, n_events: int, spark_events: int) -> tuple[list[list[object]], list[str]]:
    res = simulate(tmp / "sp", SimConfig(n_benign=2000, seed=5))
    big = tmp / "big.jsonl"
    n = tile_jsonl(res.log_path, big, n_events)
    size_gb = big.stat().st_size / 1e9
    rows: list[list[object]] = []
    notes: list[str] = []
    r = _scan_child(big, "duckdb", "none", tmp / "q_big.jsonl")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    dt = float(r["seconds"])  # type: ignore[arg-type]
    secs = r["summary"]["seconds"]  # type: ignore[index]
    rows.append(["DuckDB scan end to end (JSONL in, report out)", f"{n:,}", f"{dt:.1f}", f"{n / dt:,.0f}"])
    for stage in ("ingest", "features", "scoring"):
        st = max(float(secs[stage]), 1e-9)
        rows.append([f"  of which {stage}", f"{n:,}", f"{st:.1f}", f"{n / st:,.0f}"])
    notes.append(
        f"Input {size_gb:.1f} GB of JSONL; {r['skipped']['total']:,} bad lines quarantined "  # type: ignore[index]
        f"{r['skipped']['by_reason']}; peak RSS of the scan process {peak:,.0f} MiB."  # type: ignore[index]
    )
    _flag, dn = naive_rule(big)
    rows.append(["naive >1,000 req/hour rule, plain Python loop over the same JSONL", f"{n:,}", f"{dn:.1f}",
                 f"{n / dn:,.0f}"])
    notes.append(f"Full scan / naive rule time ratio: {dt / dn:.2f} (the naive rule reads the same file).")
    # Embedding cost on a small slice (it is optional and far slower than everything else).
    head = tmp / "head.jsonl"
    lines = [x for x in res.log_path.read_text(encoding="utf-8").split("\n") if x][:3000]
    head.write_text("\n".join(lines) + "\n", encoding="utf-8")
    e = _scan_child(head, "duckdb", "minilm", tmp / "q_head.jsonl")
    es = float(e["summary"]["seconds"]["embeddings"])  # type: ignore[index]
    rows.append(["--embeddings minilm: encode + cluster (2 CPU cores)", f"{len(lines):,}", f"{es:.1f}",
                 f"{len(lines) / es:,.0f}"])
    if spark_events:
        part = tmp / "spark.jsonl"
        with open(big, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
            for _i, line in zip(range(spark_events), src, strict=False):
                dst.write(line)
        s = _scan_child(part, "spark", "none", tmp / "q_spark.jsonl")
        ds = float(s["seconds"])  # type: ignore[arg-type]
        m = int(s["summary"]["events"])  # type: ignore[index]
        rows.append(["Spark local[2] scan end to end", f"{m:,}", f"{ds:.1f}", f"{m / ds:,.0f}"])
    return rows, notes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--benign", type=int, default=3000)
    ap.add_argument("--spark-events", type=int, default=0, help="also scan this many events on Spark")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        dev_sum, dev_rows = quality(tmp, 0, False, args.benign)
        ho_sum, ho_rows = quality(tmp, 1, True, args.benign)
        ttd = time_to_detect(tmp)
        sp_rows, notes = speed(tmp, args.events, args.spark_events)
    hdr = ["role", "accounts", "flagged by scan (target FPR 0.1%)", "flagged by naive >1,000/h rule"]
    body = "\n\n".join(
        [
            "### Quality, development simulation (seed 0)",
            dev_sum,
            markdown_table(hdr, dev_rows),
            "### Quality, held-out simulation (seed 1, with unseen attacker variants `holdout_*`)",
            ho_sum,
            markdown_table(hdr, ho_rows),
            "### Requests before a pure extractor is flagged (alone among 1,000 benign accounts)",
            markdown_table(["attacker", "flagged within first k requests"], ttd),
            "### Speed (2-core machine)",
            markdown_table(["stage", "events", "seconds", "events/s"], sp_rows),
            " ".join(notes),
        ]
    )
    write_section("analytics", "API-log analytics: extraction accounts and campaigns", body)
    print(body)


if __name__ == "__main__":
    main()
