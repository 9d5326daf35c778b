"""End-to-end tokens/s of the gateway's SmolLM2 backend: batched across concurrent requests vs
one request at a time, in the same run on the same prompts.

Both sides go through :class:`distillguard.gateway.backends.LocalModelBackend` (watermark on,
each request from its own account): ``max_batch=1`` serves requests one by one, the default
gathers concurrent requests into one ``generate`` call. Real prompts from ShareGPT.

    .venv/bin/python bench/bench_local_backend.py --requests 16 --max-tokens 64
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


async def _run(backend: object, prompts: list[str], max_tokens: int) -> tuple[float, int]:
    from distillguard.gateway.backends import CompletionRequest

    reqs = [CompletionRequest("smollm2", p, None, max_tokens, 0.8, f"acct-{i}")
            for i, p in enumerate(prompts)]
    t0 = time.perf_counter()
    outs = await asyncio.gather(*(backend.complete(r) for r in reqs))  # type: ignore[attr-defined]
    return time.perf_counter() - t0, sum(o.completion_tokens for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy box)")
    args = ap.parse_args()

    from _report import markdown_table, write_section

    from distillguard.data.corpora import iter_sharegpt
    from distillguard.gateway.backends import LocalModelBackend
    from distillguard.model.generate import Generator
    from distillguard.watermark import SecretKey

    prompts = []
    for conv in itertools.islice(iter_sharegpt(), 5000, None):
        text = next((t for role, t in conv.turns if role == "human"), None)
        if text and 20 <= len(text) <= 400:
            prompts.append(text)
        if len(prompts) == args.requests:
            break
    gen = Generator.load(num_threads=args.threads)
    key = SecretKey.generate()
    rows = []
    results = {}
    for name, max_batch in (("one request at a time", 1), ("batched (max 16 rows, 20 ms window)", 16)):
        backend = LocalModelBackend(key, generator=gen, max_batch=max_batch)
        seconds, tokens = asyncio.run(_run(backend, prompts, args.max_tokens))
        asyncio.run(backend.aclose())
        results[name] = tokens / seconds
        rows.append([name, args.requests, tokens, f"{seconds:.1f}", f"{tokens / seconds:.1f}",
                     str(backend.batches[:6]) + ("…" if len(backend.batches) > 6 else "")])
        print(rows[-1], flush=True)
    ratio = results[rows[1][0]] / results[rows[0][0]]
    header = ["mode", "requests", "completion tokens", "seconds", "tokens/s", "batch sizes"]
    body = (markdown_table(header, rows)
            + f"\n\nBatched / sequential throughput: **{ratio:.1f}×** (same prompts, same run; KGW watermark "
            "with per-row account payloads on in both). CPU: 2 cores; torch threads "
            f"{args.threads}.\n")
    write_section("local-backend", "Gateway SmolLM2 backend: batched vs one at a time", body)


if __name__ == "__main__":
    main()
