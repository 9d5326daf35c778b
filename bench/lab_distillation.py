"""The distillation lab: harvest watermarked SmolLM2 answers, train students on CPU, audit them.

    .venv/bin/python bench/lab_distillation.py            # defaults (see LabConfig)
    .venv/bin/python bench/lab_distillation.py --quick    # a smoke run in a few minutes
    .venv/bin/python bench/lab_distillation.py --scheme gumbel   # section lab-distillation-gumbel

Every student is audited black-box on held-out ShareGPT prompts and on the "logged" prompts (the
ones the extraction account sent, as our request log holds them); see distillguard.lab.run.

Harvests are cached under .cache/lab/ (reruns reuse them). Results go to the "lab-distillation"
section of docs/benchmarks.md and to .cache/lab/results-<scheme>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import lab_footer, markdown_table, student_model, write_section
from _students import add_base_args, base_fields

from distillguard.lab.run import LabConfig, LabResult, run_lab
from distillguard.lab.student import StudentConfig
from distillguard.provenance.controls import ControlsResult
from distillguard.provenance.radioactivity import RadioactivityResult
from distillguard.provenance.suspects import SUSPECT_TEMPERATURE
from distillguard.watermark import SecretKey, schemes

ROOT = Path(__file__).resolve().parent.parent
# A fixed, public lab key: this is an experiment, not a deployment (never reuse it to serve).
LAB_KEY = SecretKey(bytes(range(7, 39)))


def _p(log10_p: float) -> str:
    if log10_p > -3:
        return f"{10**log10_p:.2g}"
    if not math.isfinite(log10_p):
        return "0"
    return f"1e{log10_p:.1f}"


def _cell(res: RadioactivityResult, mark: int | None) -> str:
    """p after ``mark`` queries (None = all of them); '–' when fewer were sent."""
    if mark is None:
        c = res.curve[-1] if res.curve else None
        return f"{_p(res.log10_p_value)} ({res.n_answers} q, {res.n_tokens} tok)" if c else "–"
    pts = [c for c in res.curve if c.n_queries == mark]
    return f"{_p(pts[0].log10_p_value)} ({pts[0].n_tokens} tok)" if pts else "–"


def _best_at(res: RadioactivityResult | None, mark: int) -> float:
    """The p-value (log10) after the largest curve point within ``mark`` queries (0 if none)."""
    pts = [c for c in (res.curve if res else ()) if c.n_queries <= mark]
    return max(pts, key=lambda c: c.n_queries).log10_p_value if pts else 0.0


def targets(res: LabResult) -> list[str]:
    """Issue #3's black-box targets, each marked met / NOT met from this run's numbers."""
    by = {s.name: s for s in res.students}
    lines = []
    if "distilled" in by:
        d = by["distilled"]
        for label, r in (("held-out", d.radioactivity), ("logged", d.logged)):
            if r is None:
                continue
            lp = _best_at(r, 100)
            lines.append(
                f"distilled student, {label} prompts: p ≤ 1e-6 from ≤ 100 queries — "
                f"{'met' if lp <= -6 else 'NOT met'} (p {_p(lp)} at {min(100, r.n_answers)} queries)"
            )
    if "contaminated-5%" in by:
        c5 = by["contaminated-5%"]
        for label, r in (("held-out", c5.radioactivity), ("logged", c5.logged)):
            if r is None:
                continue
            lp = r.log10_p_value
            sent = r.n_answers
            verdict = "met" if lp <= -6 else ("NOT met" if sent >= 1000 else f"NOT met within {sent} queries")
            lines.append(
                f"contaminated-5% student, {label} prompts: p ≤ 1e-6 with ≤ 1000 queries — "
                f"{verdict} (p {_p(lp)})"
            )
    ctl = [
        (s.name, label, r.log10_p_value, min(c.log10_p_value for c in r.curve) if r.curve else 0.0)
        for s in res.students
        if s.name in ("clean-control", "human-control")
        for label, r in (("held-out", s.radioactivity), ("logged", s.logged))
        if r is not None
    ]
    if ctl:
        worst = min(min(final, low) for _, _, final, low in ctl)
        lines.append(
            "control students never below 1e-3 (every curve point, both query sets) — "
            f"{'met' if worst > -3 else 'NOT met'} (smallest p {_p(worst)})"
        )
    return lines


def _controls_line(c: ControlsResult, what: str) -> str:
    return (
        f"Null controls ({what}, {c.n_keys} never-used keys): "
        + ", ".join(
            f"{f:.3f} of p-values ≤ {a:g} (bound {b:.3f})"
            for a, f, b in zip(c.alphas, c.fractions_below, c.upper_bounds, strict=True)
        )
        + f", smallest p {_p(c.min_log10_p_value)} — {'passed' if c.passed else 'FAILED'}."
    )


def _sweep_block(results: list[LabResult]) -> list[str]:
    """The suspect-temperature sweep: each student's p-values with its answers sampled at each
    temperature (same prompts, same tuple dedup), and the null controls at each temperature; one
    block of rows per student seed when the lab was repeated over seeds."""
    first = results[0]
    if not first.config.temperature_sweep and len(results) == 1:
        return []
    marks: list[int | None] = [10, 30, 100, None]
    seeded = len(results) > 1
    rows: list[list[object]] = []
    for res in results:
        for s in res.students:
            points = [(res.config.suspect_temperature, s.radioactivity, s.logged)]
            points += [(pt.temperature, pt.radioactivity, pt.logged) for pt in s.sweep]
            for i, (t, held, logged) in enumerate(sorted(points, key=lambda x: -x[0])):
                rows.append(
                    [
                        *([str(res.config.student.seed) if i == 0 else ""] if seeded else []),
                        s.name if i == 0 else "",
                        "greedy" if t == 0 else f"{t:g}",
                        *[_cell(held, m) for m in marks],
                        _cell(logged, 100) if logged else "–",
                        _cell(logged, None) if logged else "–",
                    ]
                )
    header = [
        *(["student seed"] if seeded else []),
        "student",
        "suspect T",
        *[f"held-out p @{m} queries" for m in marks[:-1]],
        "held-out p, all",
        "logged p @100",
        "logged p, all",
    ]
    controls = [
        f"{_controls_line(c, f'distilled student{sd}, held-out answers at T = {t:g}')}  "
        for res in results
        for sd in [f" (seed {res.config.student.seed})" if seeded else ""]
        for t, c in sorted(res.sweep_controls.items(), key=lambda x: -x[0])
    ]
    return [
        "Suspect sampling temperature (the auditor sets it in each request; same prompts, same "
        "de-duplication, every temperature its own exact test"
        + ("; each student seed a separately trained student whose answers are sampled with that seed):"
           if seeded else "):"),
        "",
        markdown_table(header, rows),
        "",
        *controls,
        "",
    ]


def render(
    res: LabResult, command: str = "", gen_threads: int = 1, more: list[LabResult] | None = None
) -> str:
    """The benchmarks.md section body for one lab run (``more``: the same lab repeated with
    other student seeds, shown in the temperature table)."""
    cfg = res.config
    marks: list[int | None] = [10, 30, 100, None]
    rows: list[list[object]] = []
    for s in res.students:
        sets = [("held-out", s.radioactivity), ("logged", s.logged)]
        for i, (label, r) in enumerate((lb, r) for lb, r in sets if r is not None):
            first = i == 0
            rows.append(
                [
                    s.name if first else "",
                    f"{s.train_tokens:,}" if first else "",
                    f"{s.watermarked_fraction:.0%}" if first else "",
                    ("–" if math.isnan(s.final_loss) else f"{s.final_loss:.2f}") if first else "",
                    label,
                    *[_cell(r, m) for m in marks],
                    _p(s.reading.log10_p_value) if first else "",
                ]
            )
    header = [
        "student",
        "train tokens",
        "watermarked",
        "final loss",
        "suspect queries",
        *[f"black-box p @{m} queries" for m in marks[:-1]],
        "black-box p, all queries",
        "reading p (open model)",
    ]
    sc = cfg.student
    model = student_model(asdict(sc), n_params=res.n_params, n_trained_params=res.n_trained_params,
                          vocab_size=res.vocab_size,
                          training=f"{sc.steps} steps of {sc.batch_size}×{sc.seq_len} tokens at lr {sc.lr:g}")
    controls = [_controls_line(res.controls, "distilled student's answers to held-out prompts")]
    if res.controls_logged is not None:
        controls.append(_controls_line(res.controls_logged, "distilled student's answers to logged prompts"))
    logged_desc = (
        f" and **logged** prompts: {min(cfg.n_queries, cfg.n_harvest)} of the {cfg.n_harvest} prompts the "
        "extraction account "
        "sent (the provider's request log), in a seeded random order (the same for every student; the "
        "log does not say which of them a contaminator kept)"
        if cfg.logged_queries
        else ""
    )
    return "\n".join(
        [
            f"Scheme `{res.scheme}` {json.dumps(res.scheme_config)}; lab key id `{res.key_id}`.",
            f"Harvest: {cfg.n_harvest} ShareGPT prompts answered by SmolLM2-135M-Instruct with the watermark "
            f"({res.harvest_tokens:,} tokens incl. prompts; {cfg.max_new_tokens} new tokens max, T = "
            f"{cfg.harvest_temperature}); harvest time {res.harvest_seconds:.0f} s (0 when cached).",
            f"Students: {model}; scrubbed-finetuned = "
            f"{cfg.scrub_steps} more steps on human text; scrubbed-paraphrased = trained on SmolLM2's "
            "paraphrase (watermark off) of every harvested answer; scrubbed-averaged = every weight the mean "
            "of the distilled and clean-control students' (same initialisation). Suspect queries "
            f"(answers sampled at T = {cfg.suspect_temperature:g}, "
            f"≤ {cfg.max_new_tokens} tokens each, tuples de-duplicated over all answers): {cfg.n_queries} "
            f"**held-out** ShareGPT prompts the attacker never sent{logged_desc}. Reading test on "
            f"{cfg.reading_texts} harvest texts (mass statistic, mixture bound over a fixed λ grid).",
            "",
            markdown_table(header, rows),
            "",
            *[f"{line}  " for line in controls],
            "",
            *_sweep_block([res, *(more or [])]),
            *lab_footer(3, targets(res), res.seconds + sum(m.seconds for m in more or []), gen_threads,
                        sc.threads),
        ]
    )


def _log(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--scheme", default="kgw", choices=schemes.names(), help="watermark scheme, at its default settings"
    )
    ap.add_argument("--scheme-config", default="{}", help="JSON overrides of the scheme config")
    ap.add_argument("--n-harvest", type=int, default=240)
    ap.add_argument("--queries", type=int, default=120)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--scrub-steps", type=int, default=100)
    ap.add_argument("--no-clean", action="store_true", help="skip the watermark-off harvest and its control")
    ap.add_argument("--no-paraphrase", action="store_true",
                    help="skip the paraphrase pass and the scrubbed-paraphrased student")
    ap.add_argument(
        "--no-logged", action="store_true", help="skip the audit on the extraction account's logged prompts"
    )
    ap.add_argument("--students", help="comma-separated subset, e.g. distilled,clean-control")
    ap.add_argument("--section", default=None, help="benchmarks.md section name (default by scheme)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for SmolLM2's passes (default 1)")
    ap.add_argument("--student-threads", type=int, default=1,
                    help="torch threads for the students (default 1)")
    add_base_args(ap)
    ap.add_argument("--suspect-temperature", type=float, default=SUSPECT_TEMPERATURE,
                    help="the suspect's sampling temperature in the main audit (0 = greedy; default "
                    "the audit's)")
    ap.add_argument("--student-seeds", default="0",
                    help="comma-separated student seeds: the lab is repeated for each (harvests reused); "
                    "the first seed's run fills the main table")
    ap.add_argument("--temperature-sweep", default="",
                    help="comma-separated further suspect temperatures to audit, e.g. 1.0,0.5,0.3,0")
    args = ap.parse_args()
    from distillguard.model import Generator

    cls = schemes.get(args.scheme)
    scheme = cls(cls.config_class(**json.loads(args.scheme_config)), LAB_KEY)  # type: ignore[attr-defined, call-arg]
    cfg = LabConfig(
        n_harvest=args.n_harvest,
        n_queries=args.queries,
        scrub_steps=args.scrub_steps,
        clean_harvest=not args.no_clean,
        paraphrase=not args.no_paraphrase,
        logged_queries=not args.no_logged,
        student=StudentConfig(steps=args.steps, threads=args.student_threads, **base_fields(args)),
        students=tuple(args.students.split(",")) if args.students else None,
        suspect_temperature=args.suspect_temperature,
        temperature_sweep=tuple(float(t) for t in args.temperature_sweep.split(",") if t.strip()),
    )
    if args.quick:
        cfg = replace(
            cfg,
            n_harvest=32,
            n_queries=24,
            human_tokens=20_000,
            reading_texts=16,
            n_controls=20,
            contamination=(0.10,),
            scrub_steps=20,
            student=replace(cfg.student, steps=30),
        )
    gen = Generator.load(None, num_threads=args.threads)
    runs = []
    for seed in [int(x) for x in args.student_seeds.split(",")]:
        run_cfg = replace(cfg, student=replace(cfg.student, seed=seed))
        runs.append(run_lab(gen, scheme, ROOT / ".cache" / "lab", run_cfg, log=_log))
    res = runs[0]
    out = ROOT / ".cache" / "lab" / f"results-{args.scheme}.json"
    saved = [asdict(r) for r in runs] if len(runs) > 1 else asdict(res)
    out.write_text(json.dumps(saved, indent=1, default=str))
    body = render(res, "", args.threads, runs[1:])
    print(body)
    if not args.no_write:
        name = args.section or (
            "lab-distillation" if args.scheme == "kgw" else f"lab-distillation-{args.scheme}"
        )
        write_section(name, f"Distillation lab ({args.scheme}, {name})", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
