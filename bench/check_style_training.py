"""Beside the fingerprint lab: the style line for a longer-trained distilled student and a control.

    .venv/bin/python bench/check_style_training.py --steps 900 --extra 1200

Reuses the lab's cached SmolLM2 passes (the harvest and our probe answers; it runs them when the
cache is empty), trains two students with the same recipe for ``--steps`` steps: the *distilled*
one on the extraction account's served (restyled) harvest, and a *control* on as many tokens of
ShareGPT's ChatGPT answers to other prompts. Both answer the lab's behavioural and canary probes
plus ``--extra`` held-out ShareGPT prompts; the style-canary p-value (Holm over the enrolled
accounts) is reported as answers accumulate, with every family and with the word families alone
(the lexicon before the one-character marks were added: how much the marks add, same answers).
Writes the section ``style-training`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import markdown_table, write_section
from lab_fingerprint import FP_LAB_KEY

from distillguard.fingerprint.canaries import CanarySet
from distillguard.fingerprint.style import StyleRewriter
from distillguard.fingerprint.style_lexicon import default_families
from distillguard.lab.canary_cost import answer_nll, token_ids
from distillguard.lab.fingerprint_lab import (
    FingerprintLabConfig,
    LabHarvests,
    collect_harvests,
    control_slices,
)
from distillguard.lab.harvest import chat_prompt_ids, sharegpt_prompts
from distillguard.lab.student import CompactVocab, StudentConfig, train_student
from distillguard.provenance.lines import canary_prompts, style_line
from distillguard.watermark import KGW, KGWConfig

ROOT = Path(__file__).resolve().parent.parent


def _p(log10: float) -> str:
    return f"{10 ** log10:.2g}" if log10 > -3 else f"1e{log10:.1f}"


def _rows(name: str, registry: CanarySet, texts: list[str], distiller: str, alpha: float) -> list[list[str]]:
    n_words = sum(f.kind != "mark" for f in default_families())
    words_only = replace(registry, style=tuple((a, b[:n_words]) for a, b in registry.style))
    rows = []
    for n in sorted({m for m in (300, 600, 1000) if m < len(texts)} | {len(texts)}):
        full = style_line(registry, texts[:n], alpha=alpha).result
        word = style_line(words_only, texts[:n], alpha=alpha).result
        mine, mine_w = full.per_account[distiller], word.per_account[distiller]
        rows.append([name, str(n), f"{mine['agree']}/{mine['families']}", _p(full.log10_p_value),
                     full.traced_account or "nobody", f"{mine_w['agree']}/{mine_w['families']}",
                     _p(word.log10_p_value), word.traced_account or "nobody"])
    return rows


def _style_cost(gen: Any, hv: LabHarvests, bits: str, n_words: int, n_scored: int = 40) -> list[list[str]]:
    """What the style canaries cost the served user, with every family and with word families only."""
    records = hv.records
    fams = default_families()
    rows = []
    for label, families, b in (("word families only", fams[:n_words], bits[:n_words]),
                               ("all families", fams, bits)):
        changed, styled = [], []
        for r in records:
            rw = StyleRewriter(b, families)
            styled.append(rw.feed(r.text) + rw.finish())
            changed.append(rw.changed)
        touched = [i for i, c in enumerate(changed) if c]
        ratio = float(np.exp(np.mean([answer_nll(gen, list(records[i].prompt_ids), styled[i]).mean()
                                      - answer_nll(gen, list(records[i].prompt_ids), records[i].text).mean()
                                      for i in touched[:n_scored]])))
        rows.append([label, f"{len(touched) / len(records):.0%}",
                     f"{np.mean([changed[i] for i in touched]):.1f}", f"×{ratio:.2f}",
                     str(min(n_scored, len(touched)))])
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--extra", type=int, default=1200, help="held-out prompts beyond the lab's probes")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from distillguard.model import Generator

    torch.set_num_threads(1)
    t_start = time.time()
    # Only the passes this check reads: the harvest and our probe answers (no paraphrase, no proxy).
    cfg = FingerprintLabConfig(student=StudentConfig(steps=args.steps), paraphrase=False, proxy=False)
    gen = Generator.load(None, num_threads=1)
    hv = collect_harvests(gen, KGW(KGWConfig(), FP_LAB_KEY), FP_LAB_KEY, ROOT / ".cache" / "lab", cfg,
                          log=lambda m: None)
    tok = gen.tokenizer
    distilled = [np.asarray(list(r.prompt_ids) + token_ids(tok, s), dtype=np.int64)
                 for r, s in zip(hv.records, hv.served, strict=True)]
    n_tokens = int(sum(s.size for s in distilled))
    taken = {r.prompt for r in hv.records} | set(hv.probes)
    more = [p for p in sharegpt_prompts(args.extra * 2, offset=2000, max_chars=400) if p not in taken]
    control = control_slices(tok, 1, n_tokens, cfg.max_new_tokens, taken | set(more))[0]
    vocab = CompactVocab.build(distilled + control)
    sets = ((list(hv.probes), 64), (canary_prompts(hv.registry), 128), (more[: args.extra], 128))
    rows: list[list[str]] = []
    losses: dict[str, float] = {}
    for name, data in (("distilled", distilled), ("control", control)):
        t0 = time.time()
        student = train_student(data, vocab, replace(cfg.student, seed=cfg.seed))
        losses[name] = student.final_loss
        print(f"{name}: trained {args.steps} steps in {time.time() - t0:.0f}s, loss {losses[name]:.2f}",
              flush=True)
        texts: list[str] = []
        for prompts, n_new in sets:
            answers = student.answer(chat_prompt_ids(tok, prompts), max_new_tokens=n_new, temperature=0.8,
                                     seed=0)
            texts += [tok.decode(a.tolist(), skip_special_tokens=True) for a in answers]
        rows += _rows(name, hv.registry, texts, cfg.distiller_id, cfg.alpha)
        for row in rows[-4:]:
            print(" | ".join(row), flush=True)
    fams = default_families()
    n_marks = sum(f.kind == "mark" for f in fams)
    cost = _style_cost(gen, hv, hv.registry.style_bits()[cfg.distiller_id], len(fams) - n_marks)
    body = (
        f"Harvest: the fingerprint lab's extraction account `{cfg.distiller_id}` ({len(hv.records)} answers "
        f"by SmolLM2-135M-Instruct, ≤ {cfg.max_new_tokens} new tokens, restyled to its style-canary bits "
        f"over {len(fams)} families, {n_tokens:,} tokens with prompts). Students: the lab's recipe "
        f"({cfg.student.n_layers} layers, d = {cfg.student.d_model}), {args.steps} steps of "
        f"{cfg.student.batch_size}×{cfg.student.seq_len} tokens, same seed; distilled on the served harvest "
        f"(final loss {losses['distilled']:.2f}), control on {sum(s.size for s in control):,} tokens of "
        f"ShareGPT's ChatGPT answers to other prompts (loss {losses['control']:.2f}). Each answers "
        f"{len(hv.probes)} behavioural probes (≤ 64 tokens), {len(canary_prompts(hv.registry))} canary "
        f"questions and {args.extra} held-out ShareGPT prompts (≤ 128 tokens), at T = 0.8. Style line: exact "
        f"sign-flip test, Holm over the {len(hv.registry.style)} enrolled accounts, α = {cfg.alpha:g}. "
        f"'Word families only' tests the same answers against the first {len(fams) - n_marks} families "
        f"(the lexicon before the {n_marks} one-character marks — list bullet, item-number delimiter, "
        f"apostrophe — were added).\n\n"
        + markdown_table(["student", "answers", f"families agreeing with {cfg.distiller_id}",
                          "style p (Holm)", "traced to", "word families only: agreeing", "p (Holm)",
                          "traced to"], rows)
        + "\n\nWhat the style canaries cost the extraction account's answers (the user a wrong flag would "
        "hit): share of answers changed, changes per changed answer, SmolLM2's perplexity of the "
        "changed answers given the prompt (restyled over original: the geometric mean over answers of "
        "each answer's perplexity ratio):\n\n"
        + markdown_table(["restyled with", "answers changed", "changes per changed answer",
                          "SmolLM2 perplexity", "answers scored"], cost)
        + f"\n\nTotal wall time {(time.time() - t_start) / 60:.1f} min (1 torch thread, 2 shared cores).\n"
    )
    write_section("style-training", "Style canaries in a longer-trained student (style-training)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
