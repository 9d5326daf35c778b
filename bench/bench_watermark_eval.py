"""Detection power, false positives, payload decoding and processor overhead on real SmolLM2.

Runs :func:`distillguard.model.evaluate.run_eval` (the same code as
``distillguard eval watermark``) and writes the "watermark-eval" section of docs/benchmarks.md.
Generations are cached under ``.cache/bench/`` (a rerun only re-scores); the first run takes
about 10 minutes on 2 CPU cores.

    .venv/bin/python bench/bench_watermark_eval.py [--prompts 24] [--max-new-tokens 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import write_section

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "bench"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--max-new-tokens", type=int, default=200)
    ap.add_argument("--temperature", type=float, default=0.9)
    ap.add_argument("--human", type=int, default=2000)
    ap.add_argument("--overhead-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = ap.parse_args()

    from distillguard.model.evaluate import EvalSettings, run_eval
    from distillguard.model.generate import Generator

    t0 = time.perf_counter()
    settings = EvalSettings(
        n_prompts=args.prompts,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        n_human=args.human,
        overhead_steps=args.overhead_tokens,
    )
    generator = Generator.load(num_threads=args.threads)
    report = run_eval(
        settings,
        generator=generator,
        cache_dir=CACHE,
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )
    import torch

    report.notes.append(
        f"torch threads: {torch.get_num_threads()}; whole run {time.perf_counter() - t0:.0f} s"
    )
    md = report.to_markdown()
    print(md)
    if not args.no_write:
        path = write_section(
            "watermark-eval", "Watermark on SmolLM2: detection power, false positives, payload, overhead", md
        )
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
