"""``distillguard audit``: test a suspect model for our watermark and write JSON + HTML reports.

Exit status: 0 when the suspect is not found radioactive (or the evidence is inconclusive),
1 when it is radioactive at ``--alpha``, 2 for bad input or an unreachable suspect (the answers
collected so far stay in ``--answers-cache``; rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

_MAX_PROMPT_CHARS = 2000


def _scheme(args: argparse.Namespace) -> Any:
    from distillguard.errors import ConfigError
    from distillguard.watermark import load_key_file, schemes

    cls = schemes.get(args.scheme)
    try:
        overrides = json.loads(args.scheme_config) if args.scheme_config else {}
    except json.JSONDecodeError:
        raise ConfigError(f"--scheme-config must be a JSON object. Got {args.scheme_config!r}.") from None
    if not isinstance(overrides, dict):
        raise ConfigError(f"--scheme-config must be a JSON object. Got {args.scheme_config!r}.")
    try:
        config = cls.config_class(**overrides)  # type: ignore[attr-defined]
    except TypeError as exc:
        raise ConfigError(f"--scheme-config: {exc}") from None
    return cls(config, load_key_file(args.key))  # type: ignore[call-arg]


def _prompts(args: argparse.Namespace) -> list[str]:
    from distillguard.errors import InputError

    if args.prompts == "sharegpt":
        from distillguard.data.corpora import iter_sharegpt

        out: list[str] = []
        for conv in iter_sharegpt():
            p = conv.first_prompt
            if p and p.strip() and len(p) <= _MAX_PROMPT_CHARS and p not in out:
                out.append(p)
            if len(out) >= args.prompt_offset + args.queries:
                break
        return out[args.prompt_offset :]
    path = Path(args.prompts)
    if path.suffix == ".jsonl":
        from distillguard.provenance.suspects import read_jsonl

        rows = [o.get("prompt") for o in read_jsonl(path)]
        if not all(isinstance(r, str) for r in rows):
            raise InputError(f"{path}: every line needs a string field 'prompt'.")
        prompts = [str(r) for r in rows]
    else:
        try:
            prompts = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        except OSError as exc:
            raise InputError(f"Cannot read prompts from {str(path)!r}: {exc.strerror}.") from None
    return prompts[args.prompt_offset : args.prompt_offset + args.queries]


def _token_rows(path: Path, field: str) -> list[dict[str, Any]]:
    from distillguard.errors import InputError
    from distillguard.provenance.suspects import read_jsonl

    rows = read_jsonl(path)
    for n, r in enumerate(rows, 1):
        if not (
            isinstance(r.get(field), list)
            or isinstance(r.get("text"), str)
            or isinstance(r.get("answer"), str)
        ):
            raise InputError(f"{path}:{n}: needs '{field}' (token ids) or 'text'.")
    return rows


def _ids(rows: list[dict[str, Any]], field: str, tokenizer: Any) -> list[Any]:
    import numpy as np

    from distillguard.errors import InputError

    out = []
    for r in rows:
        if isinstance(r.get(field), list):
            try:
                out.append(np.asarray(r[field], dtype=np.int64))
            except (TypeError, ValueError):
                raise InputError(f"'{field}' must be a list of integers.") from None
        else:
            out.append(tokenizer().encode(r.get("text", r.get("answer", ""))))
    return out


def _audit(args: argparse.Namespace) -> int:
    from functools import cache

    from distillguard.errors import ConfigError
    from distillguard.provenance.audit import AuditSettings, run_audit
    from distillguard.provenance.suspects import (
        EndpointSuspect,
        LocalModelSuspect,
        local_reading_items,
        query_suspect,
    )

    @cache
    def tokenizer() -> Any:
        from distillguard.model import load_text_tokenizer

        return load_text_tokenizer()

    scheme = _scheme(args)
    settings = AuditSettings(
        alpha=args.alpha,
        dedup=not args.no_dedup,
        n_controls=args.controls,
        control_seed=args.control_seed,
        reading_statistic=args.reading_statistic,
    )
    if args.open_model and not args.model_dir:
        raise ConfigError("--open-model needs --model-dir (the suspect's weights).")
    answers = None
    suspect_name = args.endpoint or args.model_dir or args.answers
    if args.answers:
        rows = _token_rows(Path(args.answers), "token_ids")
        answers = _ids(rows, "token_ids", tokenizer)
    elif args.endpoint or args.model_dir:
        prompts = _prompts(args)
        if not prompts:
            raise ConfigError("No prompts to send (check --prompts, --queries, --prompt-offset).")
        suspect: Any
        if args.endpoint:
            key = os.environ.get(args.api_key_env) if args.api_key_env else None
            if args.api_key_env and not key:
                raise ConfigError(
                    f"Environment variable {args.api_key_env} (the suspect's API key) is not set."
                )
            suspect = EndpointSuspect(
                args.endpoint,
                key,
                model=args.model,
                max_tokens=args.max_tokens,
                temperature=args.temperature,
                max_retries=args.max_retries,
                backoff=args.backoff,
            )
        else:
            suspect = LocalModelSuspect(
                Path(args.model_dir), max_new_tokens=args.max_tokens, temperature=args.temperature
            )

        def progress(done: int, total: int) -> None:
            if not args.quiet:
                print(f"\r{done}/{total} answers", end="", file=sys.stderr, flush=True)

        cache_path = Path(args.answers_cache) if args.answers_cache else None
        texts = query_suspect(suspect, prompts, cache_path, progress=progress)
        if not args.quiet:
            print(file=sys.stderr)
        answers = tokenizer().encode_batch(texts)
    reading_items = None
    if args.open_model:
        if not args.reading_texts:
            raise ConfigError("--open-model needs --reading-texts (our watermarked texts as token ids).")
        rows = _token_rows(Path(args.reading_texts), "token_ids")
        texts_ids = _ids(rows, "token_ids", tokenizer)
        hist = [r.get("prompt_ids", []) for r in rows]
        reading_items = local_reading_items(
            Path(args.model_dir),
            list(zip(hist, texts_ids, strict=True)),
            our_vocab_size=tokenizer().vocab_size,
        )
    served = (
        _ids(_token_rows(Path(args.served), "token_ids"), "token_ids", tokenizer) if args.served else None
    )
    candidates = None
    if args.candidates:
        lines = [
            ln.strip() for ln in Path(args.candidates).read_text(encoding="utf-8").splitlines() if ln.strip()
        ]
        candidates = [int(x) if re.fullmatch(r"\d+", x) else x for x in lines]
    command = " ".join(shlex.quote(a) for a in ["distillguard", *sys.argv[1:]])
    report = run_audit(
        scheme,
        suspect=str(suspect_name),
        answers=answers,
        served=served,
        reading_items=reading_items,
        candidates=candidates,
        settings=settings,
        extra_settings={
            "prompts": args.prompts,
            "queries": args.queries,
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "served_filter": bool(args.served),
        },
        commands=(command,),
    )
    Path(args.out).write_text(report.to_json() + "\n", encoding="utf-8")
    if args.html:
        Path(args.html).write_text(report.to_html(), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(report.to_markdown(), encoding="utf-8")
    print(
        f"{report.verdict}: combined log10 p = {report.combined_log10_p_value:.2f} "
        f"(alpha {report.alpha:g}); report {args.out}"
    )
    if report.trace is not None:
        t = report.trace
        print(
            f"tracing: {t.verdict}"
            + (f", named {list(t.named)}" if t.named else "")
            + (f", cannot separate {list(t.inseparable)}" if t.inseparable else "")
        )
    return 1 if report.verdict == "radioactive" else 0


def register(subparsers: Any) -> None:
    """Add the ``audit`` sub-command."""
    p = subparsers.add_parser(
        "audit",
        help="test a suspect model for our watermark (radioactivity), trace accounts, write a report",
        description="Query a suspect (OpenAI-compatible endpoint, local model directory or a JSONL of "
        "answers), test its answers for our watermark with an exact p-value, run null controls "
        "under never-used keys, and write report.json (+ HTML/Markdown). Exit 1 when radioactive.",
    )
    p.add_argument("--key", required=True, help="our watermark key file (mode 0600)")
    p.add_argument("--scheme", default="kgw", help="watermark scheme the key was used with (default kgw)")
    p.add_argument("--scheme-config", help="scheme settings as JSON, e.g. '{\"context_width\": 2}'")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--endpoint", help="suspect's OpenAI-compatible base URL, e.g. https://host/v1")
    who.add_argument("--model-dir", help="suspect's local transformers model directory")
    who.add_argument("--answers", help="JSONL of answers already collected: 'token_ids' or 'answer' text")
    p.add_argument("--api-key-env", help="environment variable holding the endpoint's API key")
    p.add_argument("--model", default="default", help="model name sent to the endpoint")
    p.add_argument("--prompts", default="sharegpt", help="'sharegpt' (default) or a .jsonl/.txt prompt file")
    p.add_argument("--queries", type=int, default=200, help="number of prompts to send (default 200)")
    p.add_argument("--prompt-offset", type=int, default=0, help="skip this many prompts first")
    p.add_argument("--max-tokens", type=int, default=160, help="answer length requested (default 160)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-retries", type=int, default=5, help="retries per prompt on 429/5xx (default 5)")
    p.add_argument(
        "--backoff", type=float, default=1.0, help="first retry wait in seconds, doubled each time"
    )
    p.add_argument("--answers-cache", help="JSONL where answers are appended as they arrive (resume)")
    p.add_argument("--served", help="JSONL of our served outputs (token_ids or text): context filter")
    p.add_argument("--open-model", action="store_true", help="also run the reading test (needs --model-dir)")
    p.add_argument("--reading-texts", help="JSONL of our watermarked texts: token_ids (+ prompt_ids)")
    p.add_argument("--reading-statistic", choices=["mass", "top1"], default="mass")
    p.add_argument("--candidates", help="file of candidate accounts, one a line (payload schemes)")
    p.add_argument("--alpha", type=float, default=1e-6, help="significance level (default 1e-6)")
    p.add_argument(
        "--controls", type=int, default=100, help="never-used keys for null controls (default 100)"
    )
    p.add_argument("--control-seed", type=int, default=0)
    p.add_argument("--no-dedup", action="store_true", help="score repeated tuples again (invalid; for study)")
    p.add_argument("--out", required=True, help="report.json path")
    p.add_argument("--html", help="also write an HTML report")
    p.add_argument("--markdown", help="also write a Markdown report")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_audit)
