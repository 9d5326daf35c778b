"""Benchmark ``distillguard scan``: detection quality on the simulator, and speed.

Quality: a development simulation (seed 0) and a held-out one (seed 1, plus two attacker
variants never used while building the scorer). Speed: the staged Parquet of a simulation
tiled to N events (accounts renamed per tile), features + scoring on DuckDB; ingest
(validation) measured separately on JSONL; the naive ">1,000 requests/hour" rule as a plain
Python loop on the same events. Run:  .venv/bin/python bench/bench_scan.py [--events 1000000] [--spark]
"""

from __future__ import annotations

import argparse
import csv
import resource
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
    import json

    t0 = time.perf_counter()
    per: dict[tuple[str, int], int] = defaultdict(int)
    with open(log, encoding="utf-8") as fh:
        for line in fh:
            ev = json.loads(line)
            per[(ev["account_id"], int(ev["ts"] // 3600))] += 1
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
    rows = []
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
        f"{rep['summary']['events']:,} events, {len(labels)} accounts. Attackers flagged "
        f"{sum(by[a]['flagged'] for a in att)}/{len(att)}; benign FPR "
        f"{sum(by[a]['flagged'] for a in ben)}/{len(ben)}; campaign members assigned to their campaign "
        f"{assigned}/{len(camp_members)}; AUROC (attackers vs benign) {au:.4f}; naive rule flags "
        f"{sum(a in naive for a in att)}/{len(att)} attackers and {sum(a in naive for a in ben)} benign."
    )
    return summary, rows


def time_to_detect(tmp: Path) -> list[list[object]]:
    import json

    res = simulate(tmp / "ttd", SimConfig(n_benign=1000, seed=2))
    events = [json.loads(x) for x in res.log_path.read_text(encoding="utf-8").split("\n") if x]
    rows = []
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


def speed(tmp: Path, n_events: int, use_spark: bool) -> tuple[list[list[object]], str]:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from distillguard.analytics.engines.duckdb_engine import DuckDBEngine
    from distillguard.analytics.ingest import ingest
    from distillguard.analytics.scoring import BinomialTailScorer

    res = simulate(tmp / "sp", SimConfig(n_benign=2000, seed=5))
    ing = ingest([str(res.log_path)], tmp / "sp_work")
    base = pq.read_table(ing.staged_path)
    reps = max(1, n_events // base.num_rows)
    tiles = []
    for r in range(reps):
        t = base.set_column(
            base.schema.get_field_index("account_id"),
            "account_id",
            pa.array([f"{a}~{r}" for a in base.column("account_id").to_pylist()]),
        )
        tiles.append(t)
    big = pa.concat_tables(tiles)
    staged = tmp / "big.parquet"
    pq.write_table(big, staged, row_group_size=500_000)
    n = big.num_rows
    del tiles, big
    rows = []
    t0 = time.perf_counter()
    eng = DuckDBEngine(staged, [])
    feats = eng.accounts()
    eng.links()
    BinomialTailScorer().fit(feats).score(feats)
    eng.close()
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(
        ["DuckDB features + links + scoring (staged Parquet)", f"{n:,}", f"{dt:.1f}", f"{n / dt:,.0f}"]
    )
    # Ingest (JSON parse + validation + Parquet staging) on a JSONL sample.
    sample = tmp / "sample.jsonl"
    lines = [x for x in res.log_path.read_text(encoding="utf-8").split("\n") if x]
    with open(sample, "w", encoding="utf-8") as fh:
        for _i in range(max(1, 200_000 // len(lines))):
            fh.write("\n".join(lines) + "\n")
    m = len(lines) * max(1, 200_000 // len(lines))
    t0 = time.perf_counter()
    ingest([str(sample)], tmp / "ing2")
    di = time.perf_counter() - t0
    rows.append(["ingest: JSONL parse + validate + stage (Python)", f"{m:,}", f"{di:.1f}", f"{m / di:,.0f}"])
    t0 = time.perf_counter()
    _flag, dn = naive_rule(sample)
    rows.append(
        ["naive >1,000 req/hour rule, plain Python loop over JSONL", f"{m:,}", f"{dn:.1f}", f"{m / dn:,.0f}"]
    )
    if use_spark:
        from distillguard.analytics.engines.spark_engine import SparkEngine

        t0 = time.perf_counter()
        se = SparkEngine(staged, [])
        sf = se.accounts()
        se.links()
        BinomialTailScorer().fit(sf).score(sf)
        se.close()
        ds = time.perf_counter() - t0
        rows.append(["Spark local[2] features + links + scoring", f"{n:,}", f"{ds:.1f}", f"{n / ds:,.0f}"])
    _ = json
    return rows, f"peak RSS of the benchmark process {rss:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--benign", type=int, default=3000)
    ap.add_argument("--spark", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        dev_sum, dev_rows = quality(tmp, 0, False, args.benign)
        ho_sum, ho_rows = quality(tmp, 1, True, args.benign)
        ttd = time_to_detect(tmp)
        sp_rows, rss = speed(tmp, args.events, args.spark)
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
            rss,
        ]
    )
    write_section("analytics", "API-log analytics: extraction accounts and campaigns", body)
    print(body)


if __name__ == "__main__":
    main()
