"""One-off check beside the fingerprint lab: the style line for a longer-trained distilled student.

    .venv/bin/python bench/check_style_training.py --steps 900 --extra 1200

Reuses the lab's cached SmolLM2 passes (run ``bench/lab_fingerprint.py`` first), trains one
distilled student on the served harvest (vocabulary of the harvest alone) for ``--steps`` steps,
asks it the behavioural and canary probes plus ``--extra`` held-out ShareGPT prompts, and prints
the style-canary p-value as answers accumulate. Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lab_fingerprint import FP_LAB_KEY

from distillguard.lab.canary_cost import token_ids
from distillguard.lab.fingerprint_lab import FingerprintLabConfig, collect_harvests
from distillguard.lab.harvest import chat_prompt_ids, sharegpt_prompts
from distillguard.lab.student import CompactVocab, StudentConfig, train_student
from distillguard.provenance.lines import canary_prompts, style_line
from distillguard.watermark import KGW, KGWConfig

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--extra", type=int, default=1200, help="held-out prompts beyond the lab's probes")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from distillguard.model import Generator

    torch.set_num_threads(1)
    cfg = FingerprintLabConfig(student=StudentConfig(steps=args.steps))
    gen = Generator.load(None, num_threads=1)
    hv = collect_harvests(gen, KGW(KGWConfig(), FP_LAB_KEY), FP_LAB_KEY, ROOT / ".cache" / "lab", cfg,
                          log=lambda m: None)
    tok = gen.tokenizer
    distilled = [np.asarray(list(r.prompt_ids) + token_ids(tok, s), dtype=np.int64)
                 for r, s in zip(hv.records, hv.served, strict=True)]
    t0 = time.time()
    student = train_student(distilled, CompactVocab.build(distilled), replace(cfg.student, seed=cfg.seed))
    print(f"trained {args.steps} steps in {time.time() - t0:.0f}s, loss {np.mean(student.losses[-10:]):.2f}")
    taken = {r.prompt for r in hv.records} | set(hv.probes)
    more = [p for p in sharegpt_prompts(args.extra * 2, offset=2000, max_chars=400) if p not in taken]
    texts: list[str] = []
    sets = ((list(hv.probes), 64), (canary_prompts(hv.registry), 128), (more[: args.extra], 128))
    for prompts, n_new in sets:
        answers = student.answer(chat_prompt_ids(tok, prompts), max_new_tokens=n_new, temperature=0.8, seed=0)
        texts += [tok.decode(a.tolist(), skip_special_tokens=True) for a in answers]
    for n in sorted({m for m in (300, 600, 1000) if m < len(texts)} | {len(texts)}):
        r = style_line(hv.registry, texts[:n], alpha=cfg.alpha).result
        mine = r.per_account[cfg.distiller_id]
        print(f"first {n} answers: log10 p {r.log10_p_value:.1f} (Holm over {len(r.per_account)} accounts), "
              f"{mine['agree']}/{mine['families']} families agree with {cfg.distiller_id}, "
              f"traced to {r.traced_account}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
