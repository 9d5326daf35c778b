"""How many anchor slots for KGW's account payload: what a mix of accounts keeps, what tracing pays.

Synthetic and seeded (no model): a Markov teacher over a 200-token vocabulary writes watermarked
answers (KGW, context width 1, 32-bit payload); a count student (order 1) is trained on them and
answers 80 fresh prompts. For each number of anchor slots A:

- *Mix*: the harvest (200 answers) is spread evenly over k accounts; the audit's radioactivity
  p-value of the student's answers (the smaller of all tuples and anchor slots alone, ×2) and
  the trace verdict against 2,000 candidates (the k served among them).
- *One text*: one watermarked answer of N tokens traced against 200 candidate accounts; the
  share named right *and* separated from the runner-up at α = 1e-6 (what ``scheme.trace`` says).

    .venv/bin/python bench/bench_anchor_slots.py [--seeds 4] [--texts 40]

Writes the "anchor-slots" section of docs/benchmarks.md. Seeds differ from the unit tests'.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import markdown_table, write_section

from distillguard.provenance import radioactivity_test
from distillguard.provenance.simulate import CountStudent, MarkovTeacher
from distillguard.provenance.tracing import trace_accounts
from distillguard.watermark import KGW, KGWConfig, SecretKey
from distillguard.watermark.payload import account_id
from distillguard.watermark.simulate import synthetic_generate

VOCAB = 200
ANCHORS = (0, 4, 8, 12)
MIXES = (1, 3, 10, 40)
TEXT_TOKENS = (150, 200, 300, 400)
ALPHA = 1e-6


def _scheme(key: SecretKey, anchors: int, width: int = 1) -> KGW:
    return KGW(KGWConfig(payload_bits=32, anchor_chunks=anchors, context_width=width), key)


def mix_rows(seeds: int) -> list[list[object]]:
    accounts = [f"acct-{i}" for i in range(2000)]
    rows: list[list[object]] = []
    for k in MIXES:
        for a in ANCHORS:
            logs, verdicts, named_right, named_wrong = [], [], 0, 0
            for seed in range(100, 100 + seeds):
                rng = np.random.default_rng(seed)
                key = SecretKey(rng.bytes(32))
                teacher = MarkovTeacher(VOCAB, np.random.default_rng(seed + 1000))
                served = [accounts[i] for i in rng.choice(len(accounts), k, replace=False)]
                payloads = [account_id(key, served[i % k]) for i in range(200)]
                scheme = _scheme(key, a)
                texts = list(teacher.generate(rng.integers(0, VOCAB, (200, 2)), 100, rng, scheme=scheme,
                                              payloads=payloads))
                student = CountStudent(VOCAB, order=1, smoothing=0.01).fit(texts)
                answers = list(student.generate(rng.integers(0, VOCAB, (80, 2)), 100, rng))
                logs.append(radioactivity_test(scheme, answers, curve_points=0).log10_p_value)
                tr = trace_accounts(scheme, answers, accounts, alpha=ALPHA)
                verdicts.append(tr.verdict)
                named_right += len(set(tr.named) & set(served))
                named_wrong += len(set(tr.named) - set(served))
            rows.append([
                k, a, f"{np.median(logs):.1f}", f"{max(logs):.1f}",
                ", ".join(f"{v} ×{verdicts.count(v)}" for v in sorted(set(verdicts))),
                f"{named_right}/{k * seeds}", named_wrong,
            ])
    return rows


def text_rows(n_texts: int) -> list[list[object]]:
    accounts = [f"acct-{i}" for i in range(200)]
    rows: list[list[object]] = []
    for a in ANCHORS:
        cells: list[object] = [a]
        for n in TEXT_TOKENS:
            ok = 0
            for t in range(n_texts):
                rng = np.random.default_rng(5000 + t)
                key = SecretKey(rng.bytes(32))
                scheme = _scheme(key, a, width=2)
                acct = accounts[int(rng.integers(len(accounts)))]
                payload = [account_id(key, acct)]
                text = synthetic_generate(scheme, rng, n_tokens=n, batch=1, payloads=payload)[0]
                res = scheme.trace(text, accounts, alpha=ALPHA)
                ok += bool(res.significant and res.account == acct and res.separated)
            cells.append(f"{ok}/{n_texts}")
        rows.append(cells)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--texts", type=int, default=40)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    mix = mix_rows(args.seeds)
    one = text_rows(args.texts)
    body = "\n".join([
        "Synthetic, seeded (no model): Markov teacher, 200-token vocabulary, KGW with a 32-bit account "
        "payload, 16-bit checksum, 2 bits per chunk (24 payload chunks), δ = 2; A anchor slots whose "
        "colour depends on the key alone. "
        f"α = {ALPHA:g}. Seeds differ from the unit tests'.",
        "",
        f"**A harvest spread over k accounts** (200 answers of 100 tokens, context width 1; an order-1 "
        f"count student answers 80 prompts; {args.seeds} seeds per row, each with its own key and "
        "teacher; 2,000 candidate accounts):",
        "",
        markdown_table(
            ["accounts k", "anchor slots A", "radioactivity log10 p (median)", "(worst)", "trace verdicts",
             "served accounts named", "innocent named"],
            mix,
        ),
        "",
        f"**One answer traced** (context width 2, 200 candidate accounts, {args.texts} answers per cell, "
        "each with its own key and account): named right and separated from the runner-up at α:",
        "",
        markdown_table(["anchor slots A", *(f"{n} tokens" for n in TEXT_TOKENS)], one),
        "",
        f"Run time {time.perf_counter() - t0:.0f} s.",
    ])
    if args.no_write:
        print(body)
        return
    write_section(
        "anchor-slots",
        "Anchor slots: what a mix of accounts keeps, what tracing one answer pays",
        body,
    )


if __name__ == "__main__":
    main()
