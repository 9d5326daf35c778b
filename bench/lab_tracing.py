"""Account tracing in the distillation lab: trace a real student to the account that was served.

    .venv/bin/python bench/lab_tracing.py                        # kgw
    .venv/bin/python bench/lab_tracing.py --scheme kgw,gumbel    # both schemes, one section
    .venv/bin/python bench/lab_tracing.py --quick --no-write     # a smoke run

The scheme runs at its default config plus the gateway's 32-bit account payload. The harvest is
served to one account drawn at random among 2^20 candidates (then, in a second harvest, split
among 3 colluding accounts); students are trained as in bench/lab_distillation.py and queried
black-box on held-out prompts; see distillguard.lab.tracing_lab. Harvests and the students'
answers are cached under .cache/lab/ (re-tracing needs no retraining). Results go to the
"lab-tracing" section of docs/benchmarks.md and to .cache/lab/tracing-<scheme>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import lab_footer, markdown_table, write_section
from lab_distillation import LAB_KEY, _p

from distillguard.lab.student import StudentConfig
from distillguard.lab.tracing_lab import TraceOutcome, TracingLabConfig, TracingLabResult, run_tracing_lab
from distillguard.watermark import schemes
from distillguard.watermark.presets import PAYLOAD_BITS

ROOT = Path(__file__).resolve().parent.parent


def _evidence(out: TraceOutcome, i: int) -> str:
    top = out.trace.top
    if len(top) <= i:
        return "–"
    e = top[i]
    return f"`{e.account}` ({_p(e.log10_p_holm)})"


def _named(out: TraceOutcome) -> str:
    tr = out.trace
    if tr.verdict == "inseparable":
        return "inseparable: " + ", ".join(f"`{a}`" for a in tr.inseparable)
    return ", ".join(f"`{a}`" for a in tr.named) or "nobody"


def _decoded(out: TraceOutcome) -> str:
    d = out.decode
    if d.account is None:
        if d.bits_decided < d.bits_total:
            why = f"{d.bits_decided}/{d.bits_total} bits decided"
        else:
            why = "not significant" if d.checksum_ok else "checksum failed"
        return f"nobody ({why})"
    return f"`{d.account}` (p {_p(d.log10_p_value)})"


def _served_rank(out: TraceOutcome, served: tuple[str, ...]) -> str:
    ranks = {e.account: i + 1 for i, e in enumerate(out.trace.top)}
    if not served:
        return "–"
    return ", ".join(str(ranks.get(a, ">10")) for a in served)


def targets(res: TracingLabResult) -> list[str]:
    """Issue #3's tracing targets, each marked met / NOT met from this run's numbers."""
    by = {s.name: s for s in res.students}
    n = res.config.n_candidates
    lines = []
    few = "NOT met: fewer than 10^6 candidates in this run; " if n < 1_000_000 else ""
    for mc in res.config.min_counts:
        if "single" in by:
            s = by["single"]
            rows = [o for o in s.outcomes if o.min_count == mc]
            last = rows[-1]
            first = next((o for o in rows if o.correct), None)
            lines.append(
                f"min count {mc}: single-account harvest traced to the right account among {n:,} "
                "possible accounts (target ≥ 10^6): "
                + few
                + (
                    f"met from {first.n_queries} queries (named `{s.served_to[0]}` alone, Holm p "
                    f"{_p(first.trace.top[0].log10_p_holm)}; named at "
                    f"{[o.n_queries for o in rows if o.correct]} queries)"
                    if first
                    else f"NOT met within {last.n_queries} queries (verdict {last.trace.verdict}, "
                    f"true account's rank {_served_rank(last, s.served_to)})"
                )
            )
            dec = next((o for o in rows if o.decode.account == s.served_to[0]), None)
            lines.append(
                f"min count {mc}: decoded with no candidate list: "
                + (f"yes, from {dec.n_queries} queries" if dec else f"no within {last.n_queries} queries")
            )
        if "collusion" in by:
            c = by["collusion"]
            last = [o for o in c.outcomes if o.min_count == mc][-1]
            got = set(last.trace.named) & set(c.served_to)
            wrong = set(last.trace.named) - set(c.served_to)
            insep = set(last.trace.inseparable)
            lines.append(
                f"min count {mc}: {len(c.served_to)} colluding accounts, {last.n_queries} queries: verdict "
                f"{last.trace.verdict}; named {len(got)} of them and {len(wrong)} innocent; learned from our "
                f"outputs by the payload-free test on the traced tuples: p {_p(last.trace.marked_log10_p)}, "
                f"by the audit's radioactivity test: p {_p(last.radioactivity_log10_p)}"
                + (
                    f"; inseparable set of {len(insep)} accounts holding "
                    f"{len(insep & set(c.served_to))} colluders"
                    if insep
                    else ""
                )
            )
    wrong_named = [
        (s.name, o.n_queries, o.min_count, sorted(set(o.trace.named) - set(served)), o.decode.account)
        for s in res.students
        for outcomes, served in ((s.outcomes, s.served_to), (s.null_keys, ()))
        for o in outcomes
        if set(o.trace.named) - set(served)
        or (o.decode.account is not None and o.decode.account not in served)
    ]
    lines.append(
        "never an innocent account named or decoded (all students, query counts, min counts, never-used "
        "keys, clean control): " + ("met" if not wrong_named else f"NOT met: {wrong_named}")
    )
    false_learned = [
        (s.name, o.n_queries, o.min_count, o.trace.verdict)
        for s in res.students
        for outcomes, served in ((s.outcomes, s.served_to), (s.null_keys, ()))
        for o in outcomes
        if not served and o.trace.verdict != "none"
    ]
    lines.append(
        "never 'learned from our outputs' without cause (clean control and never-used keys: verdict "
        "none): " + ("met" if not false_learned else f"NOT met: {false_learned}")
    )
    return lines


def render(res: TracingLabResult, gen_threads: int = 1) -> str:
    """The benchmarks.md section body for one tracing run."""
    cfg, sc = res.config, res.config.student
    rows: list[list[object]] = []
    for s in res.students:
        for i, o in enumerate(s.outcomes):
            rows.append(
                [
                    s.name if i == 0 else "",
                    (", ".join(f"`{a}`" for a in s.served_to) or "nobody (watermark off)") if i == 0 else "",
                    o.n_queries,
                    o.min_count,
                    f"{o.n_tokens:,}",
                    f"{o.n_scored:,}",
                    _p(o.radioactivity_log10_p),
                    _p(o.anchor_log10_p),
                    o.trace.verdict,
                    _named(o),
                    _evidence(o, 0),
                    _evidence(o, 1),
                    _served_rank(o, s.served_to),
                    _decoded(o),
                    "yes" if o.correct else "**no**",
                    f"{o.seconds:.0f}",
                ]
            )
    header = [
        "student",
        "harvest served to",
        "queries",
        "min count",
        "answer tokens",
        "scored tuples",
        "radioactivity p (all tuples)",
        "anchor slots alone p",
        "verdict",
        "named",
        "best candidate (Holm p)",
        "runner-up (Holm p)",
        "served accounts' rank",
        "decode, no candidate list",
        "named exactly the served accounts?",
        "trace s",
    ]
    nulls = []
    for s in res.students:
        for mc in cfg.min_counts:
            ks = [o for o in s.null_keys if o.min_count == mc]
            if not ks:
                continue
            worst = min(o.trace.top[0].log10_p_holm for o in ks)
            named = [o.trace.named for o in ks if o.trace.named]
            decoded = [o.decode.account for o in ks if o.decode.account]
            nulls.append(
                f"Never-used keys, min count {mc}, on the {s.name} student's {ks[0].n_queries} answers "
                f"({len(ks)} keys, same {cfg.n_candidates:,} candidates): named {named or 'nobody'}; decoded "
                f"{decoded or 'nobody'}; verdicts {sorted({o.trace.verdict for o in ks})}; smallest Holm p "
                f"{_p(worst)}."
            )
    harvests = {
        "single": "all served to one account (`single`)",
        "collusion": f"split round-robin among {cfg.n_colluders} accounts (`collusion`)",
        "clean-control": "the same prompts with the watermark off (`clean-control`)",
    }
    coll = [s for s in res.students if s.name == "collusion"]
    excl = []
    if coll:
        last = coll[0].outcomes[-1]  # all queries, the last min count
        for e in last.trace.top:
            if e.account in coll[0].served_to or e.named:
                ex = "–" if e.log10_p_exclusive is None else _p(e.log10_p_exclusive)
                excl.append(
                    f"`{e.account}`{' (colluder)' if e.account in coll[0].served_to else ' (innocent)'}: "
                    f"Holm p {_p(e.log10_p_holm)}, step-down conditional p {ex}, named {e.named}"
                )
    return "\n".join(
        [
            f"Scheme `{res.scheme}` {json.dumps(res.scheme_config)} (its default settings with the gateway's "
            f"{res.scheme_config['payload_bits']}-bit account payload); lab key id `{res.key_id}`.",
            f"Candidates: {cfg.n_candidates:,} account names (`acct-0000000` …), ids by the keyed "
            "account hash the gateway uses; the served accounts drawn at random (seeded). Tracing: "
            f"`trace_accounts` (Holm over all candidates, α = {cfg.alpha:g}, step-down for colluders) and "
            "`decode_accounts` (no candidate list, keyed checksum).",
            f"Harvests: {cfg.n_harvest} ShareGPT prompts answered by SmolLM2-135M-Instruct "
            f"({cfg.max_new_tokens} new tokens max, T = {cfg.harvest_temperature}): "
            + "; ".join(harvests[s.name] for s in res.students if s.name in harvests)
            + f"; harvest time {res.harvest_seconds:.0f} s (0 when cached).",
            f"Students as in the lab: Llama-style, {sc.n_layers} layers, d = {sc.d_model}, "
            f"{res.n_params / 1e6:.2f} M parameters, {sc.steps} steps of {sc.batch_size}×{sc.seq_len} "
            f"tokens, lr {sc.lr}. Suspect queries: held-out ShareGPT prompts, answers sampled at T = 0.8, ≤ "
            f"{cfg.query_tokens} tokens each, tuples de-duplicated over all answers; each row traces the "
            "first N answers. **Min count**: `trace_accounts(min_count=m)` scores only the distinct "
            "tuples the suspect produced at least m times over the N answers (a selection that depends "
            "on the answers alone, so the tests stay exact): m = 1 is every distinct tuple; m = 3 keeps "
            "the contexts the student learned well. m = 3 was picked after an exploratory look at the "
            "`single` student's answers (the true account's p-value for m = 1, 2, 3, 5, 10 at 300, 1000 "
            "and 3000 queries) — the collusion, clean-control and never-used-key rows are out of sample "
            "for that choice. m = `auto` is the rule fixed after that run and now the default: the "
            "ladder m = 1, 2, 3, 5, each at α/4, naming the union (Bonferroni; Holm p shown ×4).",
            "",
            markdown_table(header, rows),
            "",
            *[f"{line}  " for line in nulls],
            "",
            *(
                [
                    f"Collusion, all queries, min count {cfg.min_counts[-1]}, per account:",
                    "",
                    *[f"- {x}" for x in excl],
                    "",
                ]
                if excl
                else []
            ),
            *lab_footer(3, targets(res), res.seconds, gen_threads),
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scheme", default="kgw", help="comma-separated schemes (kgw, gumbel): one section")
    ap.add_argument("--n-harvest", type=int, default=240)
    ap.add_argument("--queries", type=int, default=3000)
    ap.add_argument("--query-tokens", type=int, default=96)
    ap.add_argument("--marks", default="100,300,1000,3000", help="query counts to trace at")
    ap.add_argument("--min-counts", default="1,3,auto",
                    help="trace_accounts min_count settings to report (ints or 'auto', the ladder)")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--candidates", type=int, default=1 << 20)
    ap.add_argument("--null-keys", type=int, default=5)
    ap.add_argument(
        "--no-collusion",
        nargs="?",
        const="all",
        default="",
        help="skip the collusion run (for these schemes)",
    )
    ap.add_argument("--no-clean", action="store_true")
    ap.add_argument("--section", default="lab-tracing", help="benchmarks.md section name")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for SmolLM2's passes (default 1)")
    args = ap.parse_args()
    from distillguard.model import Generator

    names = args.scheme.split(",")
    skip = set(args.no_collusion.split(",")) if args.no_collusion else set()
    for name in names:
        if name not in ("kgw", "gumbel"):
            ap.error(f"--scheme: {name!r} is not one of kgw, gumbel")
    gen = Generator.load(None, num_threads=args.threads)
    bodies = []
    for name in names:
        cls = schemes.get(name)
        scheme = cls(cls.config_class(payload_bits=PAYLOAD_BITS), LAB_KEY)  # type: ignore[attr-defined, call-arg]
        cfg = TracingLabConfig(
            n_harvest=args.n_harvest,
            n_queries=args.queries,
            query_tokens=args.query_tokens,
            student=StudentConfig(steps=args.steps),
            n_candidates=args.candidates,
            query_marks=tuple(int(m) for m in args.marks.split(",")),
            min_counts=tuple(m if m == "auto" else int(m) for m in args.min_counts.split(",")),
            n_null_keys=args.null_keys,
            collusion=not ({"all", name} & skip),
            clean_control=not args.no_clean,
        )
        if args.quick:
            cfg = replace(
                cfg,
                n_harvest=32,
                n_queries=60,
                query_marks=(30,),
                student=StudentConfig(steps=30),
                n_null_keys=1,
            )
        res = run_tracing_lab(gen, scheme, ROOT / ".cache" / "lab", cfg, log=lambda m: print(m, flush=True))
        out = ROOT / ".cache" / "lab" / f"tracing-{name}.json"
        out.write_text(json.dumps(asdict(res), indent=1, default=str))
        body = render(res, args.threads)
        bodies.append(f"### {name}\n\n{body}" if len(names) > 1 else body)
        print(bodies[-1], flush=True)
    if not args.no_write:
        write_section(args.section, "Account tracing in the distillation lab", "\n\n".join(bodies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
