"""``distillguard detect``, ``detect-batch`` and ``eval``: test text for the watermark.

Detection needs numpy and the ``tokenizers`` library only (no torch). Exit status of
``detect``: 0 watermarked, 1 not (or not enough tokens), 2 usage / input errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from distillguard.errors import EncodingError, InputError, KeyFileError

__all__ = ["load_keys", "read_text", "register"]


# -- shared helpers (also used by commands/model.py and commands/demo.py) -------------------------
def load_keys(key_files: list[str] | None, keyring_dir: str | None) -> tuple[Any, str | None]:
    """Return ``(KeyRing, scheme hint)`` from ``--key`` files (first = primary) and/or a directory.

    The scheme hint is the ``scheme`` field of the primary key file, if it has one.

    Raises:
        KeyFileError: no key given, a file is bad, or the directory holds no key files.
    """
    from distillguard.watermark.keys import KeyRing, load_key_file

    paths = [Path(p) for p in key_files or []]
    if keyring_dir is not None:
        d = Path(keyring_dir)
        if not d.is_dir():
            raise KeyFileError(f"Keyring directory {str(d)!r} does not exist.")
        found = sorted(p for p in d.iterdir() if p.is_file() and p.suffix in (".key", ".json"))
        if not found:
            raise KeyFileError(f"Keyring directory {str(d)!r} holds no *.key or *.json key files.")
        paths += found
    if not paths:
        raise KeyFileError("No watermark key given: pass --key FILE (or --keyring DIR).")
    keys = [load_key_file(p) for p in paths]
    hint = None
    try:
        doc = json.loads(paths[0].read_text(encoding="utf-8"))
        hint = doc.get("scheme") if isinstance(doc.get("scheme"), str) else None
    except (OSError, ValueError):  # load_key_file already validated it; a hint is optional
        hint = None
    unique = list({k.key_id: k for k in keys}.values())
    return KeyRing(unique), hint


def read_text(source: str) -> str:
    """Read UTF-8 text from a file path or ``-`` (stdin).

    Raises:
        InputError: the file cannot be read.
        EncodingError: the bytes are not valid UTF-8.
    """
    if source == "-":
        data = sys.stdin.buffer.read()
        name = "standard input"
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"Cannot read {source!r}: {exc.strerror}.") from None
        name = repr(source)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EncodingError(f"{name} is not valid UTF-8 (bad byte at offset {exc.start}).") from None


def _scheme(args: argparse.Namespace) -> Any:
    from distillguard.watermark.presets import cli_scheme

    ring, hint = load_keys(args.key, args.keyring)
    return cli_scheme(args.scheme or hint or "kgw", ring), ring


def _account_names(ring: Any, names: list[str] | None) -> dict[int, str]:
    from distillguard.watermark.payload import account_id
    from distillguard.watermark.presets import PAYLOAD_BITS

    return {account_id(k, n, PAYLOAD_BITS): n for n in names or [] for k in ring}


def _with_char_spans(det: Any, offsets: list[tuple[int, int]]) -> Any:
    if not det.spans or not offsets:
        return det
    spans = tuple(
        dataclasses.replace(
            s,
            start_char=offsets[min(s.start_token, len(offsets) - 1)][0],
            end_char=offsets[min(max(s.end_token, 1), len(offsets)) - 1][1],
        )
        for s in det.spans
    )
    return dataclasses.replace(det, spans=spans)


def _trace(scheme: Any, ids: Any, names: list[str] | None, alpha: float, dedup: bool) -> Any:
    """Trace against the candidate names (None without candidates or without trace support)."""
    if not names or not hasattr(scheme, "trace"):
        return None
    return scheme.trace(ids, list(dict.fromkeys(names)), alpha=alpha, dedup=dedup)


def _summary(det: Any, accounts: dict[int, str], trace: Any = None) -> dict[str, Any]:
    payload = det.payload.value if det.payload is not None else None
    named = accounts.get(payload) if payload is not None else None
    if named is None and trace is not None and trace.significant and trace.separated and det.watermarked:
        named = trace.account
    return {
        "watermarked": det.watermarked,
        "p_value": det.p_value,
        "log10_p_value": det.log10_p_value,
        "n_tokens": det.n_tokens,
        "n_scored": det.n_scored,
        "enough_tokens": det.enough_tokens,
        "payload": payload,
        "account": named,
        "trace_p_value": trace.p_value if trace is not None else None,
        "key_id": det.key_id,
        "scheme": det.scheme,
    }


# -- detect ---------------------------------------------------------------------------------------
def _detect(args: argparse.Namespace) -> int:
    from distillguard.model.tokenizer import load_text_tokenizer

    scheme, ring = _scheme(args)
    text = args.text if args.text is not None else read_text(args.source)
    ids, offsets = load_text_tokenizer().encode_with_offsets(text)
    det = scheme.detect(ids, alpha=args.alpha, dedup=not args.no_dedup, localize=args.localize)
    det = _with_char_spans(det, offsets)
    accounts = _account_names(ring, args.account)
    trace = _trace(scheme, ids, args.account, args.alpha, not args.no_dedup)
    if args.json:
        doc = det.to_dict()
        doc["account"] = _summary(det, accounts, trace)["account"]
        doc["trace"] = dataclasses.asdict(trace) if trace is not None else None
        print(json.dumps(doc, default=str))
    else:
        print(_human(det, accounts, trace))
    return 0 if det.watermarked else 1


def _human(det: Any, accounts: dict[int, str], trace: Any = None) -> str:
    if not det.enough_tokens:
        verdict = f"NOT ENOUGH TOKENS ({det.n_scored} distinct tuples scored: too few for a verdict)"
    elif det.watermarked:
        verdict = f"WATERMARKED (p ≤ alpha = {det.alpha:g})"
    else:
        verdict = f"not watermarked (p > alpha = {det.alpha:g})"
    lines = [
        f"verdict        {verdict}",
        f"p_value        {det.p_value:.3g}   (log10 {det.log10_p_value:.2f})",
        f"tokens         {det.n_tokens} in text, {det.n_scored} scored",
        f"scheme / key   {det.scheme} / {det.key_id}",
    ]
    if det.payload is not None:
        v = det.payload.value
        if v is None:
            status = det.details.get("payload_status", "undecided")
            bits = f"{det.payload.bits_decided}/{det.payload.bits_total} bits"
            lines.append(f"payload        none named ({status}; {bits})")
        else:
            name = accounts.get(v)
            lines.append(
                f"payload        {v}"
                + (f"  = account {name!r}" if name else "")
                + f"   (chance an unrelated text names an account: {det.payload.p_value:.2g})"
            )
    if trace is not None:
        if trace.significant and trace.separated and det.watermarked:
            other = (
                f", beats {trace.runner_up!r} (p = {trace.separation_p_value:.2g})" if trace.runner_up else ""
            )
            lines.append(
                f"traced account {trace.account!r}   p = {trace.p_value:.3g} ({trace.correction}{other})"
            )
        else:
            lines.append(
                f"traced account none of the {trace.n_candidates} candidates (best p = {trace.p_value:.3g})"
            )
    for s in det.spans:
        where = f"chars {s.start_char}–{s.end_char}" if s.start_char is not None else ""
        lines.append(f"span           tokens {s.start_token}–{s.end_token} {where}  p = {s.p_value:.3g}")
    if "localize_correction" in det.details:
        lines.append(f"spans tested   {det.details['localize_correction']}")
    if "correction" in det.details:
        lines.append(f"keys           {det.details['correction']}")
    return "\n".join(lines)


# -- detect-batch ---------------------------------------------------------------------------------
def _detect_batch(args: argparse.Namespace) -> int:
    from distillguard.model.tokenizer import load_text_tokenizer

    scheme, ring = _scheme(args)
    accounts = _account_names(ring, args.account)
    tok = load_text_tokenizer()
    text = read_text(args.source)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    t0 = time.perf_counter()
    n = hits = bad = 0
    try:
        batch: list[tuple[int, Any, str]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if not isinstance(rec, dict) or not isinstance(rec.get(args.field), str):
                bad += 1
                err = {"line": lineno, "error": f"not a JSON object with a string {args.field!r} field"}
                out.write(json.dumps(err) + "\n")
                continue
            batch.append((lineno, rec.get("id"), rec[args.field]))
            if len(batch) >= 512:
                n, hits = _flush(batch, scheme, tok, accounts, args, out, n, hits)
                batch = []
        n, hits = _flush(batch, scheme, tok, accounts, args, out, n, hits)
    finally:
        if out is not sys.stdout:
            out.close()
    secs = time.perf_counter() - t0
    print(
        f"scanned {n} texts in {secs:.2f} s: {hits} watermarked at alpha={args.alpha:g}"
        + (f", {bad} unusable lines" if bad else ""),
        file=sys.stderr,
    )
    return 0


def _flush(
    batch: list[tuple[int, Any, str]],
    scheme: Any,
    tok: Any,
    accounts: dict[int, str],
    args: argparse.Namespace,
    out: Any,
    n: int,
    hits: int,
) -> tuple[int, int]:
    if not batch:
        return n, hits
    for (lineno, rid, _), ids in zip(batch, tok.encode_batch([b[2] for b in batch]), strict=True):
        det = scheme.detect(ids, alpha=args.alpha, dedup=not args.no_dedup)
        trace = _trace(scheme, ids, args.account, args.alpha, not args.no_dedup)
        doc = {"line": lineno, **({"id": rid} if rid is not None else {}), **_summary(det, accounts, trace)}
        out.write(json.dumps(doc) + "\n")
        n += 1
        hits += bool(det.watermarked)
    return n, hits


# -- eval -----------------------------------------------------------------------------------------
def _eval(args: argparse.Namespace) -> int:
    from distillguard.model.evaluate import EvalSettings, run_eval

    try:
        batches = tuple(int(b) for b in args.overhead_batches.split(",") if b.strip())
    except ValueError:
        raise InputError(
            f"--overhead-batches must be comma-separated ints. Got {args.overhead_batches!r}."
        ) from None
    settings = EvalSettings(
        n_prompts=args.prompts,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        n_human=args.human,
        seed=args.seed,
        overhead_steps=args.overhead_tokens,
        overhead_batches=batches,
    )
    report = run_eval(
        settings,
        cache_dir=Path(args.cache) if args.cache else None,
        progress=lambda m: print(m, file=sys.stderr),
    )
    print(json.dumps(report.to_dict()) if args.json else report.to_markdown())
    return 0


def _key_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--key",
        action="append",
        metavar="FILE",
        help="watermark key file (repeat for rotated keys; the first is primary)",
    )
    p.add_argument("--keyring", metavar="DIR", help="a directory of key files (*.key, *.json) to test")
    p.add_argument("--scheme", default=None, help="kgw or gumbel (default: the key file's hint, else kgw)")
    p.add_argument(
        "--alpha", type=float, default=1e-6, help="false-positive rate of the verdict (default 1e-6)"
    )
    p.add_argument(
        "--no-dedup", action="store_true", help="score repeated (context, token) tuples every time"
    )
    p.add_argument(
        "--account",
        action="append",
        metavar="NAME",
        help="candidate account name(s): a decoded payload is reported under its name, and "
        "the text is traced against the candidates (exact, Bonferroni-corrected)",
    )


def register(subparsers: Any) -> None:
    """Add ``detect``, ``detect-batch`` and ``eval``."""
    p = subparsers.add_parser(
        "detect",
        help="test a text for the watermark",
        description="Test a text (FILE, '-' for stdin, or --text) for the watermark: exact p-value, "
        "verdict at --alpha, tokens scored, the embedded account and, with --localize, the "
        "watermarked spans. Exit 0 watermarked, 1 not.",
    )
    p.add_argument("source", nargs="?", default="-", help="text file, or - for stdin (default)")
    p.add_argument("--text", default=None, help="the text itself instead of a file")
    _key_args(p)
    p.add_argument("--localize", action="store_true", help="report watermarked spans of a long text")
    p.add_argument("--json", action="store_true", help="print the full Detection as JSON")
    p.set_defaults(func=_detect)

    b = subparsers.add_parser(
        "detect-batch",
        help="scan a JSONL file of texts in one process",
        description="Read JSONL records with a text field and write one JSON result per line "
        "(the line number, the record's id if any, verdict, p-value, payload). A summary goes to stderr.",
    )
    b.add_argument("source", help="JSONL file, or - for stdin")
    b.add_argument("--field", default="text", help="the record field holding the text (default: text)")
    b.add_argument("--out", default=None, help="write results here instead of stdout")
    _key_args(b)
    b.set_defaults(func=_detect_batch)

    e = subparsers.add_parser(
        "eval",
        help="measure detection power and false positives on real SmolLM2 answers",
        description="Generate watermarked (KGW, Gumbel) and plain answers from SmolLM2 for held-out "
        "ShareGPT prompts, then report detection rate at FPR 1e-3 per length, false-positive "
        "rates on human and unwatermarked text, payload decoding accuracy and generation "
        "overhead. Generations are cached on disk.",
    )
    e.add_argument("what", nargs="?", default="watermark", choices=["watermark"])
    e.add_argument("--prompts", type=int, default=24, help="held-out prompts per scheme (default 24)")
    e.add_argument("--max-new-tokens", type=int, default=200)
    e.add_argument("--temperature", type=float, default=0.9)
    e.add_argument("--human", type=int, default=2000, help="human / ChatGPT texts per corpus for the FPR")
    e.add_argument("--overhead-tokens", type=int, default=16, help="tokens per overhead timing run")
    e.add_argument("--overhead-batches", default="1,16", help="batch sizes timed, comma-separated")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--cache", default=None, help="generation cache directory")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=_eval)
