"""``distillguard demo`` (what ``make demo`` runs): the watermark end to end on the real model.

Creates a throw-away key, has SmolLM2 answer real ShareGPT prompts for two accounts in one
batch (watermarked, each row with its own account id), answers the same prompts without the
watermark as controls, and tests all of them plus human-written text. Then the service half
(:mod:`._demo_service`): the gateway serves two accounts through the OpenAI API and their
answers are traced from the text, and a labelled API log is scanned for extraction accounts.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]

ACCOUNTS = ("acme-research", "globex-labs")
DECOYS = tuple(f"customer-{i:03d}" for i in range(48))


def _prompts(n: int) -> list[str]:
    from distillguard.data.corpora import iter_sharegpt

    out: list[str] = []
    for conv in iter_sharegpt(limit=400):
        p = conv.first_prompt
        if p and 40 <= len(p) <= 300 and len(p.split()) >= 8 and p.isascii():
            out.append(p.strip())
        if len(out) == n:
            break
    return out


def _human_texts() -> list[tuple[str, str]]:
    from distillguard.data.corpora import human_eval_prompts, iter_sharegpt

    texts: list[tuple[str, str]] = []
    for conv in iter_sharegpt(limit=400):
        for role, text in conv.turns:
            if role == "human" and 600 <= len(text) <= 3000 and text.isascii() and not texts:
                texts.append(("human (ShareGPT user)", text))
            if role == "gpt" and 600 <= len(text) <= 3000 and text.isascii() and len(texts) == 1:
                texts.append(("ChatGPT (ShareGPT)", text))
        if len(texts) == 2:
            break
    texts.append(("human (HumanEval/0)", human_eval_prompts()[0]["prompt"]))
    return texts


def _demo(args: argparse.Namespace) -> int:
    from distillguard.model.generate import Generator
    from distillguard.model.tokenizer import load_text_tokenizer
    from distillguard.watermark.keys import write_key_file
    from distillguard.watermark.payload import account_id
    from distillguard.watermark.presets import PAYLOAD_BITS, cli_scheme

    say = print
    workdir = Path(tempfile.mkdtemp(prefix="distillguard-demo-"))
    key = write_key_file(workdir / "demo.key", scheme=args.scheme)
    scheme = cli_scheme(args.scheme, key)
    say(
        f"1. key      {workdir / 'demo.key'} (mode 0600), key_id {key.key_id}, scheme {args.scheme} "
        f"with a {PAYLOAD_BITS}-bit account payload"
    )

    t = time.perf_counter()
    gen = Generator.load(scheme, num_threads=args.threads)
    say(
        f"2. model    SmolLM2-135M-Instruct loaded in {time.perf_counter() - t:.1f} s "
        "(first run dequantises the GGUF and caches it; later runs read the cache)"
    )

    prompts = _prompts(args.answers)
    accounts = [ACCOUNTS[i % 2] for i in range(len(prompts))]
    ids = {a: account_id(key, a, PAYLOAD_BITS) for a in ACCOUNTS}
    t = time.perf_counter()
    sampling = {
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "top_p": args.top_p,
        "seed": args.seed,
    }
    marked = gen.generate(prompts, [ids[a] for a in accounts], **sampling)
    plain = gen.with_scheme(None).generate(prompts[: args.controls], **sampling)
    n_tok = sum(len(g.token_ids) for g in marked + plain)
    say(
        f"3. generate {len(marked)} watermarked answers for 2 accounts in one batch + {len(plain)} "
        f"unwatermarked controls: {n_tok} tokens in {time.perf_counter() - t:.1f} s"
    )

    tok = load_text_tokenizer()
    candidates = [*ACCOUNTS, *DECOYS]
    rows: list[list[str]] = []

    def test(source: str, embedded: str, text: str) -> None:
        token_ids = tok.encode(text)  # detection works from the text alone
        det = scheme.detect(token_ids, alpha=args.alpha)
        trace: Any = scheme.trace(token_ids, candidates, alpha=args.alpha)
        blind = det.payload.value if det.payload is not None else None
        by_id = {v: k for k, v in ids.items()}
        decoded = by_id.get(blind, str(blind)) if blind is not None else "-"
        traced, margin = "-", "-"
        if trace.significant:
            traced = f"{trace.account} (p {trace.p_value:.0e})"
            margin = f"{trace.separation_p_value:.0e}" + (" ok" if trace.separated else "")
        verdict = "WATERMARKED" if det.watermarked else ("too short" if not det.enough_tokens else "no")
        rows.append(
            [source, embedded, str(det.n_scored), f"{det.p_value:.1e}", verdict, decoded, traced, margin]
        )

    for g, a in zip(marked, accounts, strict=True):
        test("SmolLM2 + watermark", a, g.text)
    for g in plain:
        test("SmolLM2, no watermark", "-", g.text)
    for source, text in _human_texts():
        test(source, "-", text)

    say(
        f"4. detect   from the text alone, alpha = {args.alpha:g}; 'traced' = tested against "
        f"{len(candidates)} candidate accounts (exact, Bonferroni-corrected)\n"
    )
    header = [
        "text",
        "account embedded",
        "scored",
        "p-value",
        "verdict",
        "decoded (blind)",
        "traced",
        "vs runner-up",
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        say("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    say(
        "\n  p-value: exact, under 'this text was written without our key'.\n"
        "  decoded (blind): the account read from the text with no candidate list; named only when all\n"
        "  48 payload bits are decided and the checksum verifies, which takes longer texts than these.\n"
        "  traced: the best of the candidates, corrected for trying them all.\n"
        "  vs runner-up: exact sign test against the second-best candidate ('ok' at alpha)."
    )
    say("\nfirst watermarked answer (prompt: " + repr(prompts[0][:70]) + "):")
    say(textwrap.indent(textwrap.fill(marked[0].text[:500], 96), "  | "))
    say(
        "\nTry it yourself:\n"
        f"  distillguard generate --key {workdir / 'demo.key'} --account acme --prompt 'Tell me about tides' "
        "--max-new-tokens 200 --json > answer.jsonl\n"
        "  (put the answer's text in answer.txt)\n"
        f"  distillguard detect answer.txt --key {workdir / 'demo.key'} --account acme --account bob\n"
    )
    if not args.no_service:
        from distillguard.commands._demo_service import gateway_stage, scan_stage

        app = gateway_stage(gen, key, workdir, say, max_tokens=min(200, args.max_new_tokens))
        scan_stage(app, workdir, say)
    missed = [r for r in rows if r[0].startswith("SmolLM2 +") and r[4] != "WATERMARKED"]
    false = [r for r in rows if not r[0].startswith("SmolLM2 +") and r[4] == "WATERMARKED"]
    if missed or false:
        print(
            f"note: {len(missed)} watermarked answers not detected, {len(false)} false positives",
            file=sys.stderr,
        )
    return 0


def register(subparsers: Any) -> None:
    """Add ``demo``."""
    p = subparsers.add_parser(
        "demo",
        help="watermark SmolLM2 answers for two accounts, detect them, show controls",
        description="End-to-end demo on the real model (about 1–2 minutes on 2 CPU cores).",
    )
    p.add_argument("--scheme", default="kgw", choices=["kgw", "gumbel"])
    p.add_argument("--answers", type=int, default=4, help="watermarked answers (default 4)")
    p.add_argument("--controls", type=int, default=2, help="unwatermarked controls (default 2)")
    p.add_argument("--max-new-tokens", type=int, default=300)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--alpha", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    # One torch thread by default: on a 2-core machine where anything else is running, two OpenMP
    # threads spin waiting for each other (measured: this demo took 8.7 min with 2 threads next to
    # other jobs, about 1 min with 1). Pass --threads 2 on an idle machine.
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-service", action="store_true",
                   help="skip the gateway and log-scan stages (watermark only)")
    p.set_defaults(func=_demo)
