"""``distillguard generate``: answer prompts with SmolLM2, watermarked for an account.

The scheme comes from :func:`distillguard.watermark.presets.cli_scheme` (32-bit account
payload), the same settings ``distillguard detect`` uses, so the two round-trip.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from distillguard.errors import InputError

__all__ = ["register"]


def _prompts(args: argparse.Namespace) -> list[Any]:
    from distillguard.commands.watermark import read_text

    prompts: list[Any] = list(args.prompt or [])
    if args.prompts_file:
        for lineno, line in enumerate(read_text(args.prompts_file).splitlines(), 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("{"):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(f"{args.prompts_file}:{lineno}: invalid JSON.") from None
                value = rec.get("messages", rec.get("prompt")) if isinstance(rec, dict) else None
                if value is None:
                    raise InputError(
                        f"{args.prompts_file}:{lineno}: expected a 'prompt' or 'messages' field."
                    )
                prompts.append(value)
            else:
                prompts.append(line)
    if not prompts:
        raise InputError("No prompt given: pass --prompt TEXT or --prompts-file FILE.")
    return prompts


def _generate(args: argparse.Namespace) -> int:
    from distillguard.commands.watermark import load_keys
    from distillguard.model.generate import Generator
    from distillguard.watermark.payload import account_id
    from distillguard.watermark.presets import PAYLOAD_BITS, cli_scheme

    prompts = _prompts(args)
    scheme = None
    payload = None
    key_id = None
    if not args.no_watermark:
        ring, hint = load_keys(args.key, args.keyring)
        scheme = cli_scheme(args.scheme or hint or "kgw", ring)
        key_id = ring.primary.key_id
        if args.account is not None:
            payload = account_id(ring.primary, args.account, PAYLOAD_BITS)
    elif args.account is not None:
        raise InputError("--account needs a watermark; drop --no-watermark.")
    print("loading SmolLM2 ...", file=sys.stderr)
    gen = Generator.load(scheme, num_threads=args.threads)
    out = gen.generate(
        prompts,
        [payload] * len(prompts) if scheme is not None else None,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    settings = {
        "scheme": scheme.name if scheme is not None else None,
        "key_id": key_id,
        "watermarked": scheme is not None,
        "account": args.account,
        "payload_id": payload,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
    }
    sink = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    try:
        for i, (prompt, g) in enumerate(zip(prompts, out, strict=True)):
            if args.json or args.out:
                doc = {
                    "prompt": prompt,
                    "text": g.text,
                    **settings,
                    "prompt_tokens": g.prompt_tokens,
                    "completion_tokens": g.completion_tokens,
                    "finish_reason": g.finish_reason,
                }
                sink.write(json.dumps(doc, ensure_ascii=False) + "\n")
            else:
                if i:
                    sink.write("\n---\n")
                sink.write(g.text + "\n")
    finally:
        if sink is not sys.stdout:
            sink.close()
    return 0


def register(subparsers: Any) -> None:
    """Add ``generate``."""
    p = subparsers.add_parser(
        "generate",
        help="answer prompts with SmolLM2, watermarked for an account",
        description="Generate answers with the local SmolLM2-135M-Instruct (chat template, batched). "
        "The answer carries the watermark of --key and, with --account, that account's id. "
        "--json prints one JSON object per prompt (JSONL) with the text and the settings.",
    )
    p.add_argument("--prompt", action="append", help="a user prompt (repeatable)")
    p.add_argument(
        "--prompts-file",
        default=None,
        help="one prompt per line, or JSONL lines with 'prompt' (str) or 'messages' (a chat)",
    )
    p.add_argument("--key", action="append", metavar="FILE", help="watermark key file (the first is used)")
    p.add_argument("--keyring", metavar="DIR", help="a directory of key files")
    p.add_argument("--scheme", default=None, help="kgw or gumbel (default: the key file's hint, else kgw)")
    p.add_argument("--account", default=None, help="account name to embed in the watermark")
    p.add_argument("--no-watermark", action="store_true", help="generate an unwatermarked control")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", action="store_true", help="JSONL output: text plus settings")
    p.add_argument("--out", default=None, help="write JSONL here instead of printing")
    p.set_defaults(func=_generate)
