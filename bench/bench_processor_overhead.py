"""Generation overhead of the watermark on SmolLM2: our logits processor (KGW, Gumbel) vs no
watermark vs ``transformers``' own ``WatermarkLogitsProcessor`` (KGW, lefthash, same γ and δ),
batch 1 and 16, in one process on the same prompts.

Two measures: the seconds per decoding step end to end (noisy on a shared machine: answers
differ in content, and other jobs run), and the seconds spent *inside* each processor's
``__call__`` (the cost the watermark adds), as a share of the step.

    .venv/bin/python bench/bench_processor_overhead.py --new-tokens 32 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


class _Timed:
    """Wrap a logits processor and add up the seconds spent in it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        t = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.seconds += time.perf_counter() - t
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    from _report import markdown_table, write_section
    from transformers import LogitsProcessorList
    from transformers.generation.logits_process import WatermarkLogitsProcessor as HFWatermark

    from distillguard.data.corpora import iter_sharegpt
    from distillguard.model.generate import Generator
    from distillguard.watermark import KGW, Gumbel, GumbelConfig, KGWConfig, SecretKey
    from distillguard.watermark.hf import WatermarkLogitsProcessor

    gen = Generator.load(num_threads=args.threads)
    key = SecretKey(bytes(range(32)))
    prompts = [c.first_prompt for c in itertools.islice(iter_sharegpt(), 14000, 14400)
               if c.first_prompt and 30 <= len(c.first_prompt) <= 300][:16]
    vocab = gen.model.config.vocab_size

    def processors(name: str, batch: int) -> tuple[LogitsProcessorList, _Timed | None]:
        if name == "none":
            return LogitsProcessorList(), None
        if name == "transformers KGW":
            timed = _Timed(HFWatermark(vocab, "cpu", greenlist_ratio=0.25, bias=2.0, context_width=1))
        else:
            scheme = KGW(KGWConfig(), key) if name == "distillguard KGW" else Gumbel(GumbelConfig(), key)
            timed = _Timed(WatermarkLogitsProcessor(scheme, [None] * batch))
        return LogitsProcessorList([timed]), timed

    names = ["none", "distillguard KGW", "distillguard Gumbel", "transformers KGW"]
    rows = []
    for batch in (1, 16):
        chats = [gen._encode([{"role": "user", "content": p}]) for p in prompts[:batch]]
        width = max(len(c) for c in chats)
        ids = torch.full((batch, width), int(gen.tokenizer.pad_token_id), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, c in enumerate(chats):
            ids[r, width - len(c):] = torch.tensor(c)
            mask[r, width - len(c):] = 1
        per_step: dict[str, list[float]] = {n: [] for n in names}
        inside: dict[str, list[float]] = {n: [] for n in names}
        for rep in range(args.repeats):
            for name in names:
                procs, timed = processors(name, batch)
                torch.manual_seed(rep)
                t = time.perf_counter()
                with torch.inference_mode():
                    out = gen.model.generate(input_ids=ids, attention_mask=mask, logits_processor=procs,
                                             max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                             do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
                                             pad_token_id=int(gen.tokenizer.pad_token_id))
                steps = out.shape[1] - width
                per_step[name].append((time.perf_counter() - t) / steps)
                inside[name].append((timed.seconds / steps) if timed else 0.0)
        base = statistics.median(per_step["none"])
        for name in names:
            step = statistics.median(per_step[name])
            proc = statistics.median(inside[name])
            rows.append([batch, name, f"{step * 1000:.1f}", f"{step / base:.2f}", f"{proc * 1000:.2f}",
                         f"{proc / step:.1%}"])
            print(rows[-1], flush=True)
    body = markdown_table(["batch", "processor", "ms/step", "step vs none", "ms inside processor",
                           "share of step"], rows)
    body += (f"\n\n{args.new_tokens} new tokens (forced), {args.repeats} repeats, medians; torch threads "
             f"{args.threads}. 'ms inside processor' is the time in the processor's `__call__` alone — the "
             "cost the watermark adds; the end-to-end ratio also carries the machine's noise. transformers' "
             "processor: `WatermarkLogitsProcessor(greenlist_ratio=0.25, bias=2.0, "
             "seeding_scheme='lefthash', context_width=1)`; ours: KGW γ=0.25, δ=2, context width 2, "
             "top-2048 bias; Gumbel top-2048.\n")
    write_section("processor-overhead", "Watermark generation overhead vs transformers' processor", body)


if __name__ == "__main__":
    main()
