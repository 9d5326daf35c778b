"""Run every benchmark in ``bench/`` with its default settings (``make bench``).

Each script writes its own section of docs/benchmarks.md. They are run one after another in
separate processes (so one's memory does not count against the next) and a failure in one is
reported without stopping the rest. Expect about an hour on the 2-core machine; pass names to
run a subset: ``python bench/run_all.py bench_detect_speed bench_scan``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Cheapest first, so a quick look at the speed figures does not wait for the lab.
ORDER = ("bench_detect_speed", "bench_gateway", "bench_scan", "bench_local_backend",
         "bench_processor_overhead", "bench_watermark_eval", "bench_watermark_robustness",
         "lab_distillation")


def main(argv: list[str]) -> int:
    names = argv or [n for n in ORDER if (HERE / f"{n}.py").exists()]
    unknown = [n for n in names if not (HERE / f"{n}.py").exists()]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {sorted(p.stem for p in HERE.glob('*.py'))}")
        return 2
    failed = []
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        rc = subprocess.call([sys.executable, str(HERE / f"{name}.py")])
        print(f"== {name}: exit {rc} after {time.perf_counter() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    if failed:
        print(f"failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
