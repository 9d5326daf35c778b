"""Watermark stealing: how many harvested tokens does an attacker need to learn our green lists?

    .venv/bin/python bench/bench_watermark_stealing.py                 # defaults (~40 min on 2 cores)
    .venv/bin/python bench/bench_watermark_stealing.py --harvest-only  # just fill the caches
    .venv/bin/python bench/bench_watermark_stealing.py --quick         # smoke run

For KGW at context widths 1, 2 and 3 (γ, δ at our defaults, the public lab key of
bench/lab_distillation.py) an attacker harvests SmolLM2's watermarked answers to ShareGPT
prompts, contrasts them with unwatermarked answers of the same model to the same prompts
(:class:`distillguard.watermark.stealing.GreenListStealer`), and then

- labels green candidates in held-out watermarked contexts: precision against the true green
  lists (chance = γ);
- spoofs: SmolLM2 without our key, with a bias on the tokens it believes green, answers
  held-out prompts, and our real detector judges the answers (FPR 1e-3).

The Gumbel scheme gets the same precision measurement, with "green" = the tuple's uniform is in
the top γ (its detector score −ln(1−u) exceeds ln(1/γ)).

Harvests are cached under .cache/lab/ (the width-2 and reference harvests are exactly the
distillation lab's, so its cache is reused when present). Results go to the
"watermark-stealing" section of docs/benchmarks.md and .cache/lab/results-stealing.json.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import markdown_table, write_section

from distillguard import stats
from distillguard.watermark import KGW, Gumbel, GumbelConfig, KGWConfig, SecretKey

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "lab"
# The distillation lab's fixed, public key (bench/lab_distillation.py LAB_KEY): an experiment key.
LAB_KEY = SecretKey(bytes(range(7, 39)))
OTHER_KEY = SecretKey(bytes(range(100, 132)))  # never used to generate: the null control
ALPHA = 1e-3


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _harvest(gen: Any, scheme: Any, prompts: list[str], tag: str, args: argparse.Namespace) -> list[Any]:
    from distillguard.lab.harvest import harvest

    t0 = time.perf_counter()
    recs = harvest(
        gen.with_scheme(scheme),
        prompts,
        cache_dir=CACHE,
        tag=tag,
        max_new_tokens=args.max_new_tokens,
        temperature=0.8,
        seed=0,
        progress=lambda d, n: log(f"harvest {tag}: {d}/{n}"),
    )
    n_tok = sum(len(r.token_ids) for r in recs)
    log(f"harvest {tag}: {len(recs)} answers, {n_tok} tokens, {time.perf_counter() - t0:.0f} s")
    return recs


def harvests(gen: Any, args: argparse.Namespace) -> dict[str, list[Any]]:
    """Every harvest the benchmark needs, keyed by "ref", "kgw-w<k>", "gumbel"."""
    from distillguard.lab.harvest import sharegpt_prompts

    prompts = sharegpt_prompts(args.n_prompts)
    out = {"ref": _harvest(gen, None, prompts, "clean" if args.n_prompts == 240 else "steal-ref", args)}
    for w, n in zip(args.widths, args.width_prompts, strict=True):
        tag = "wm" if (w == 2 and n == 240) else f"steal-kgw{w}"
        out[f"kgw-w{w}"] = _harvest(gen, KGW(KGWConfig(context_width=w), LAB_KEY), prompts[:n], tag, args)
    if args.gumbel_prompts:
        g = Gumbel(GumbelConfig(), LAB_KEY)
        out["gumbel"] = _harvest(gen, g, prompts[: args.gumbel_prompts], "steal-gumbel", args)
    return out


def _seqs(recs: list[Any], w: int) -> list[list[int]]:
    """Answers with the last ``w`` prompt tokens in front: the attacker knows its prompts and
    the public chat template, so the first answer tokens have their full context too."""
    return [list(r.prompt_ids[-w:]) + list(r.token_ids) for r in recs]


def _prefix(recs: list[Any], n_tokens: int) -> list[Any]:
    """The first harvested answers holding ``n_tokens`` answer tokens (0 = all of them)."""
    if n_tokens <= 0:
        return recs
    out, total = [], 0
    for r in recs:
        if total >= n_tokens:
            break
        out.append(r)
        total += len(r.token_ids)
    return out


def spoof_generate(gen: Any, stealer: Any, prompts: list[str], args: argparse.Namespace) -> list[list[int]]:
    """SmolLM2 *without our key*, sampling (T 0.8, top-p 0.95) with the stealer's bias on the
    tokens it believes green. Returns the answers' token ids (end-of-turn excluded)."""
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

    from distillguard.model.batching import left_padded

    class SpoofBias(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            out = stealer.bias(input_ids.numpy(), scores.float().numpy(), args.spoof_delta)
            return torch.from_numpy(out).to(scores.dtype)

    tok = gen.tokenizer
    enc = []
    for p in prompts:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True
        )
        enc.append([int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)])
    eos = gen.model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    pad = int(tok.pad_token_id)
    input_ids, mask = left_padded(enc, pad)
    width = input_ids.shape[1]
    procs = LogitsProcessorList([TemperatureLogitsWarper(0.8), SpoofBias(), TopPLogitsWarper(0.95)])
    torch.manual_seed(args.seed)
    with torch.inference_mode():
        out = gen.model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            logits_processor=procs,
            max_new_tokens=args.spoof_tokens,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            pad_token_id=pad,
        )
    answers = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos_ids), len(row))
        answers.append(row[:cut])
    return answers


def _p(log10_p: float) -> str:
    if not math.isfinite(log10_p):
        return "0"
    return f"{10**log10_p:.2g}" if log10_p > -3 else f"1e{log10_p:.1f}"


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}"


def measure(gen: Any, hv: dict[str, list[Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Fit the stealer at every size, score its labels and (at the spoof sizes) spoof."""
    from distillguard.lab.harvest import sharegpt_prompts
    from distillguard.watermark.stealing import (
        GreenListStealer,
        StealerConfig,
        evaluate_precision,
        true_green,
    )

    rows: list[dict[str, Any]] = []
    ref_all = hv["ref"]
    spoof_prompts = sharegpt_prompts(args.spoof_answers, offset=args.n_prompts)
    schemes: list[tuple[str, Any, list[Any]]] = [
        (f"kgw-w{w}", KGW(KGWConfig(context_width=w), LAB_KEY), hv[f"kgw-w{w}"]) for w in args.widths
    ]
    if "gumbel" in hv:
        schemes.append(("gumbel", Gumbel(GumbelConfig(), LAB_KEY), hv["gumbel"]))
    for name, scheme, recs in schemes:
        w = scheme.config.context_width
        n_hold = max(2, len(recs) // 10)
        train, held = recs[:-n_hold], recs[-n_hold:]
        ref = _seqs(ref_all[: len(train)], w)  # the base model's answers to the attacker's prompts
        ref_ctl = [scheme.detect(r.token_ids, alpha=ALPHA) for r in ref_all[-n_hold:]]
        # the precision of the naive attacker who labels green every token it saw after a context
        seen = [np.asarray(x) for x in _seqs(train, w)]
        ctx = np.concatenate([np.lib.stride_tricks.sliding_window_view(x[:-1], w) for x in seen])
        harvest_green = float(true_green(scheme, ctx, np.concatenate([x[w:] for x in seen])).mean())
        total = sum(len(r.token_ids) for r in train)
        sizes = [s for s in sorted(set(args.sizes)) if 0 < s < total] + [0]
        for size in sizes:
            part = _prefix(train, size)
            n_tok = sum(len(r.token_ids) for r in part)
            t0 = time.perf_counter()
            st = GreenListStealer(StealerConfig(context_width=w)).fit(_seqs(part, w), ref)
            pr = evaluate_precision(st, _seqs(held, w), scheme)
            full = next((o for o in pr.by_order if o.order == w), None)
            row: dict[str, Any] = {
                "scheme": name,
                "width": w,
                "harvest_tokens": n_tok,
                "coverage": pr.coverage,
                "coverage_full": full.coverage if full else 0.0,
                "labelled": pr.n_labelled,
                "precision": pr.precision,
                "precision_full": full.precision if full else math.nan,
                "labelled_full": full.n_labelled if full else 0,
                "log10_p": pr.log10_p_value,
                "log10_p_full": (
                    stats.binomial_log_sf(full.n_green, full.n_labelled, pr.chance) / stats.LN10
                    if full
                    else 0.0
                ),
                "chance": pr.chance,
                "harvest_green": harvest_green,
                "ref_detected": float(np.mean([d.watermarked for d in ref_ctl])),
                "precision_other_key": evaluate_precision(
                    st, _seqs(held, w), type(scheme)(scheme.config, OTHER_KEY)
                ).precision,
                "fit_eval_s": time.perf_counter() - t0,
            }
            is_spoof_size = size == 0 or size in args.spoof_sizes
            if name.startswith("kgw") and is_spoof_size and args.spoof_answers:
                t1 = time.perf_counter()
                # back-off labels are at chance (see the precision columns): the attacker sees that
                # on its own harvest too, so it spoofs with full-context labels only
                spoofer = GreenListStealer(StealerConfig(context_width=w, backoff=False))
                answers = spoof_generate(gen, spoofer.fit(_seqs(part, w), ref), spoof_prompts, args)
                dets = [scheme.detect(a, alpha=ALPHA) for a in answers]
                row.update(
                    spoof_detected=float(np.mean([d.watermarked for d in dets])),
                    spoof_median_log10_p=float(np.median([d.log10_p_value for d in dets])),
                    spoof_green=float(
                        np.nanmedian([d.details.get("green_fraction", math.nan) for d in dets] + [math.nan])
                    ),
                    spoof_tokens=int(np.mean([len(a) for a in answers])),
                    spoof_s=time.perf_counter() - t1,
                )
            log(json.dumps(row))
            rows.append(row)
    return {"rows": rows, "args": {k: v for k, v in vars(args).items()}}


def render(res: dict[str, Any], wall_s: float) -> str:
    a = res["args"]
    header = [
        "scheme",
        "width",
        "harvested tokens",
        "coverage (full context)",
        "labelled pairs",
        "precision (full context)",
        "precision (all, incl. back-off)",
        "p vs chance (full context)",
        f"spoof detected @{ALPHA:g}",
        "spoof median p",
        "spoof green fraction",
    ]
    rows = []
    for r in res["rows"]:
        sp = "spoof_detected" in r
        rows.append(
            [
                r["scheme"],
                r["width"],
                f"{r['harvest_tokens']:,}",
                f"{r['coverage']:.0%} ({r['coverage_full']:.0%})",
                f"{r['labelled']:,}",
                f"{_pct(r['precision_full'])} ({r['labelled_full']:,})",
                _pct(r["precision"]),
                _p(r["log10_p_full"]),
                f"{r['spoof_detected']:.0%} ({a['spoof_answers']})" if sp else "",
                _p(r["spoof_median_log10_p"]) if sp else "",
                _pct(r["spoof_green"]) if sp else "",
            ]
        )
    last = {r["scheme"]: r for r in res["rows"]}  # the largest harvest of each scheme
    null = ", ".join(f"{k} {_pct(r['precision_other_key'])}" for k, r in last.items())
    naive = ", ".join(f"{k} {_pct(r['harvest_green'])}" for k, r in last.items())
    ctl = ", ".join(f"{k} {r['ref_detected']:.0%}" for k, r in last.items() if k.startswith("kgw"))
    return "\n".join(
        [
            "KGW γ = 0.25, δ = 2 (our defaults) at context width 1, 2, 3 and Gumbel (width 2), the lab's "
            "public key; SmolLM2-135M-Instruct answers ShareGPT prompts "
            f"(≤ {a['max_new_tokens']} new tokens, T = 0.8; prompts per KGW width {a['width_prompts']}, "
            f"Gumbel {a['gumbel_prompts']}). The attacker "
            "(`distillguard.watermark.stealing.GreenListStealer`, default config: ≤ 5 labels per context, "
            "posterior log-odds > 0, back-off on) fits on the first N harvested tokens, contrasted with the "
            "same model's unwatermarked answers to the same prompts; it is scored on the last 10 % of each "
            "harvest (held-out answers). *Precision* = share of its distinct (context, token) green labels "
            "that are truly green (chance 0.25; 'full context' = labels from a context seen whole in the "
            "harvest, with their count; *coverage* = held-out positions that get any label, in brackets "
            "from the full context). *Spoof*: SmolLM2 **without the key**, T = 0.8, top-p 0.95, "
            f"+{a['spoof_delta']:g} on its full-context labels, answers {a['spoof_answers']} held-out "
            f"prompts (≤ {a['spoof_tokens']} tokens); our detector at FPR {ALPHA:g} (dedup on).",
            "",
            markdown_table(header, rows),
            "",
            f"Null controls: the same attackers scored against a never-used key: precision {null} (chance "
            f"0.25); the unwatermarked held-out answers flagged by our detector: {ctl}. Baseline: the "
            f"share of green among the harvested tokens themselves (the precision of labelling every "
            f"token seen): {naive}.",
            "",
            INTERPRETATION.strip(),
            "",
            f"Total wall time {wall_s / 60:.1f} min (harvests cached; harvesting took about "
            f"{a.get('harvest_note', 'see the log')}).",
        ]
    )


# Written for the run recorded in docs/benchmarks.md (2026-11-29); update it with the numbers.
INTERPRETATION = """
**Reading.** At every width the counting attacker labels green far above chance (precision
0.56–0.62 against 0.25; labelling every token it saw gives 0.49–0.53), but only for contexts it
has seen *whole*: labels backed off to shorter contexts are at chance, because our context hash
is a keyed PRF of all `context_width` tokens together (no partial leak for the attacker to
exploit, unlike the self-/min-hash variants Jovanović et al. attack). At ~20k harvested tokens
precision per label is flat; what grows with the harvest is *coverage*: held-out positions with
a full-context label reach 84 % at width 1, 33 % at width 2, 16 % at width 3.

**Spoofing.** With ~20k harvested tokens (240 answers) at width 1, 7 of 16 answers written
without the key pass our detector at FPR 1e-3 (median p 0.0037); at 3k tokens none do. At
widths 2 and 3 the spoofer gets 0 and 1 of 16 (median p 0.34 and 0.26) with the same budget.
This is a budget, not a wall: coverage keeps rising with the harvest (width 2: 12 % → 33 % from
1k to 19k tokens), and the paper's attacks use millions of tokens.

**Gumbel.** Distortion-free holds averaged over keys, not for one key: generation is a
deterministic function of (key, context), the chosen token tends to have a large u, and the same
counting attacker labels "high-u" tuples (u ≥ 0.75) with precision 0.65 against 0.25 (p ≈ 1e-16,
from only 3.8k tokens). So per-context frequencies *do* carry signal for this scheme; what they
buy a spoofer (replaying seen context → token continuations) was not measured here.

**The default width.** Keep 2. Width 1 is the one a ~240-query harvest can already partly spoof;
width 3 buys little over 2 at this budget (both resist) while halving full-context coverage — and
full-context (context, token) statistics are exactly what a distilled student must learn for the
radioactivity audit to see it (sections lab-distillation*), besides making each edit destroy more
tuples. Caveats: 16 answers per spoof cell, one key, one attacker (SmolLM2 itself; a stronger
paraphrasing spoofer or a larger harvest would do better), no scrub test. A '–' green fraction:
an answer too short to score (< 16 tuples) made the median undefined in this run (the script now
skips such answers).
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-prompts", type=int, default=240, help="harvest prompts (240 = the lab's)")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--widths", default="1,2,3")
    ap.add_argument("--width-prompts", default="", help="harvest prompts per width, e.g. 240,240,160")
    ap.add_argument("--gumbel-prompts", type=int, default=48, help="0 = skip the Gumbel row")
    ap.add_argument("--sizes", default="1000,3000,10000", help="harvested-token budgets (all is added)")
    ap.add_argument("--spoof-sizes", default="", help="budgets that also get a spoof run (all always does)")
    ap.add_argument("--spoof-answers", type=int, default=16, help="0 = no spoof runs")
    ap.add_argument("--spoof-tokens", type=int, default=96)
    ap.add_argument("--spoof-delta", type=float, default=4.0, help="the attacker's bias on its green labels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--harvest-only", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--from-json", action="store_true", help="re-render .cache/lab/results-stealing.json")
    ap.add_argument("--harvest-note", default="", help="harvest time to state when the harvests were cached")
    args = ap.parse_args()
    args.widths = [int(w) for w in str(args.widths).split(",")]
    wp = [int(n) for n in str(args.width_prompts).split(",")] if args.width_prompts else []
    args.width_prompts = wp or [args.n_prompts] * len(args.widths)
    if len(args.width_prompts) != len(args.widths) or max(args.width_prompts) > args.n_prompts:
        ap.error("--width-prompts needs one count ≤ --n-prompts per width")
    args.sizes = [int(s) for s in str(args.sizes).split(",") if s]
    args.spoof_sizes = [int(s) for s in str(args.spoof_sizes).split(",") if s]
    if args.from_json:
        res = json.loads((CACHE / "results-stealing.json").read_text())
        if args.harvest_note:
            res["args"]["harvest_note"] = args.harvest_note
        body = render(res, res["wall_s"])
        print(body)
        if not args.no_write:
            write_section(
                "watermark-stealing", "Watermark stealing (watermark-stealing)", body, res["command"]
            )
        return 0
    from distillguard.model import Generator

    t0 = time.perf_counter()
    gen = Generator.load(None, num_threads=1)
    hv = harvests(gen, args)
    if args.harvest_only:
        return 0
    res = measure(gen, hv, args)
    wall = time.perf_counter() - t0
    res["wall_s"] = wall
    res["command"] = " ".join(shlex.quote(x) for x in ["python", *sys.argv])
    (CACHE / "results-stealing.json").write_text(json.dumps(res, indent=1, default=str))
    body = render(res, wall)
    print(body)
    if not args.no_write:
        write_section("watermark-stealing", "Watermark stealing (watermark-stealing)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
