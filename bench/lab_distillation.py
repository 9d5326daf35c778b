"""The distillation lab: harvest watermarked SmolLM2 answers, train students on CPU, audit them.

    .venv/bin/python bench/lab_distillation.py            # defaults (see LabConfig)
    .venv/bin/python bench/lab_distillation.py --quick    # a smoke run in a few minutes

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

from _report import markdown_table, write_section

from distillguard.lab.run import LabConfig, LabResult, run_lab
from distillguard.lab.student import StudentConfig
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


def render(res: LabResult, command: str) -> str:
    cfg = res.config
    marks = [10, 30, 100, cfg.n_queries]
    rows = []
    for s in res.students:
        curve = {c.n_queries: c for c in s.radioactivity.curve}
        cells = []
        for m in marks:
            pts = [c for q, c in curve.items() if q <= m]
            c = max(pts, key=lambda c: c.n_queries) if pts else None
            cells.append(f"{_p(c.log10_p_value)} ({c.n_tokens} tok)" if c else "–")
        rows.append(
            [
                s.name,
                f"{s.train_tokens:,}",
                f"{s.watermarked_fraction:.0%}",
                f"{s.final_loss:.2f}",
                *cells,
                _p(s.reading.log10_p_value),
            ]
        )
    header = [
        "student",
        "train tokens",
        "watermarked",
        "final loss",
        *[f"black-box p @{m} queries" for m in marks[:-1]],
        f"black-box p @{marks[-1]} (all)",
        "reading p (open model)",
    ]
    c = res.controls
    sc = cfg.student
    return "\n".join(
        [
            f"Scheme `{res.scheme}` {json.dumps(res.scheme_config)}; lab key id `{res.key_id}`.",
            f"Harvest: {cfg.n_harvest} ShareGPT prompts answered by SmolLM2-135M-Instruct with the watermark "
            f"({res.harvest_tokens:,} tokens incl. prompts; {cfg.max_new_tokens} new tokens max, T = "
            f"{cfg.harvest_temperature}); harvest time {res.harvest_seconds:.0f} s (0 when cached).",
            f"Students: Llama-style, {sc.n_layers} layers, d = {sc.d_model}, "
            f"{res.n_params / 1e6:.2f} M parameters (compact vocabulary of the lab's corpora), "
            f"{sc.steps} steps of {sc.batch_size}×{sc.seq_len} tokens, lr {sc.lr}; scrub = "
            f"{cfg.scrub_steps} more steps on human text. Suspect queries: held-out ShareGPT prompts, "
            f"≤ {cfg.max_new_tokens} tokens each; reading test on {cfg.reading_texts} harvest texts "
            "(mass statistic, Chernoff bound).",
            "",
            markdown_table(header, rows),
            "",
            f"Null controls (distilled student's answers, {c.n_keys} never-used keys): "
            + ", ".join(
                f"{f:.3f} of p-values ≤ {a:g} (bound {b:.3f})"
                for a, f, b in zip(c.alphas, c.fractions_below, c.upper_bounds, strict=True)
            )
            + f", smallest p {_p(c.min_log10_p_value)} — {'passed' if c.passed else 'FAILED'}.",
            f"Total wall time {res.seconds / 60:.1f} min on this machine (2 shared cores).",
        ]
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scheme", default="kgw")
    ap.add_argument("--scheme-config", default="{}", help="JSON overrides of the scheme config")
    ap.add_argument("--n-harvest", type=int, default=240)
    ap.add_argument("--queries", type=int, default=120)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--scrub-steps", type=int, default=100)
    ap.add_argument("--no-clean", action="store_true", help="skip the watermark-off harvest and its control")
    ap.add_argument("--students", help="comma-separated subset, e.g. distilled,clean-control")
    ap.add_argument("--section", default=None, help="benchmarks.md section name (default by scheme)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = ap.parse_args()
    from distillguard.model import Generator

    cls = schemes.get(args.scheme)
    scheme = cls(cls.config_class(**json.loads(args.scheme_config)), LAB_KEY)  # type: ignore[attr-defined, call-arg]
    cfg = LabConfig(
        n_harvest=args.n_harvest,
        n_queries=args.queries,
        scrub_steps=args.scrub_steps,
        clean_harvest=not args.no_clean,
        student=StudentConfig(steps=args.steps),
        students=tuple(args.students.split(",")) if args.students else None,
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
            student=StudentConfig(steps=30),
        )
    gen = Generator.load(None, num_threads=1)
    res = run_lab(gen, scheme, ROOT / ".cache" / "lab", cfg, log=lambda m: print(m, flush=True))
    out = ROOT / ".cache" / "lab" / f"results-{args.scheme}.json"
    out.write_text(json.dumps(asdict(res), indent=1, default=str))
    body = render(res, "")
    print(body)
    if not args.no_write:
        name = args.section or (
            "lab-distillation" if args.scheme == "kgw" else f"lab-distillation-{args.scheme}"
        )
        write_section(name, f"Distillation lab ({args.scheme}, {name})", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
