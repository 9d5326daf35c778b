"""Detection power and false-positive rates of the shipped watermark on real SmolLM2 answers.

What ``distillguard eval watermark`` and ``bench/bench_watermark_eval.py`` run:

1. SmolLM2 answers held-out ShareGPT prompts (conversations from #12000 on; the tests and
   demo use the first few hundred) three times: watermarked with KGW and with Gumbel (the
   command-line preset: 32-bit account payload, one of ``n_accounts`` accounts per prompt), and
   unwatermarked. Generations are cached on disk (JSONL), keyed by every setting that shapes
   them, so a rerun only re-scores.
2. **Power**: the fraction of answers detected at ``alpha`` (the p-values are exact, so the
   threshold *is* the false-positive rate) when truncated to 25, 50, 100, 200, 400 tokens.
3. **False positives**: the same detectors on text the key never touched — ShareGPT user
   turns, ChatGPT answers, HumanEval prompts, unwatermarked SmolLM2 answers and SmolLM2 answers
   watermarked under another key — with the count a correct test allows (the 99.9 % quantile
   of Binomial(n, alpha)).
4. **Payload**: on the full answers, blind decoding (right / wrong / not named) and tracing
   against a candidate list (the true accounts plus decoys).
5. **Overhead**: seconds per generation step with the logits processor vs plain sampling,
   in the same process, plus the time spent inside ``scheme.process`` itself.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.errors import ConfigError
from distillguard.watermark.base import Detection, WatermarkScheme
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.payload import account_id
from distillguard.watermark.presets import PAYLOAD_BITS, cli_scheme

__all__ = ["EvalReport", "EvalSettings", "run_eval"]

PROMPT_OFFSET = 12_000
HUMAN_OFFSET = 14_000
SCHEMES = ("kgw", "gumbel")


@dataclass(frozen=True)
class EvalSettings:
    """What to generate and test (see the module docstring)."""

    n_prompts: int = 24
    max_new_tokens: int = 200
    temperature: float = 0.9
    top_p: float = 1.0
    lengths: tuple[int, ...] = (25, 50, 100, 200, 400)  # lengths above max_new_tokens are skipped
    alpha: float = 1e-3
    n_human: int = 2000
    n_accounts: int = 8
    n_decoys: int = 92
    seed: int = 0
    overhead_steps: int = 16
    overhead_batches: tuple[int, ...] = (1, 16)
    overhead_repeats: int = 3
    batch_size: int = 16

    def __post_init__(self) -> None:
        for name in (
            "n_prompts",
            "max_new_tokens",
            "n_human",
            "n_accounts",
            "overhead_steps",
            "overhead_repeats",
            "batch_size",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(
                    f"The {name!r} parameter of EvalSettings must be an int ≥ 1. Got {v!r} instead."
                )
        if not self.overhead_batches or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in self.overhead_batches
        ):
            raise ConfigError(
                "The 'overhead_batches' parameter of EvalSettings must be a non-empty tuple of ints ≥ 1. "
                f"Got {self.overhead_batches!r} instead."
            )
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(
                f"The 'alpha' parameter of EvalSettings must be in (0, 1). Got {self.alpha!r} instead."
            )


@dataclass
class EvalReport:
    """Tables of the evaluation (rows are lists of printable cells) and how long it took."""

    settings: EvalSettings
    power: list[list[Any]] = field(default_factory=list)
    fpr: list[list[Any]] = field(default_factory=list)
    payload: list[list[Any]] = field(default_factory=list)
    overhead: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def to_markdown(self) -> str:
        """The report as Markdown tables with short explanations."""
        s = self.settings
        out = [
            f"SmolLM2-135M-Instruct answers to {s.n_prompts} held-out ShareGPT prompts (conversations "
            f"from #{PROMPT_OFFSET}), temperature {s.temperature}, top-p {s.top_p}, up to "
            f"{s.max_new_tokens} new tokens; schemes as the CLI ships them (default config + "
            f"{PAYLOAD_BITS}-bit account payload, {s.n_accounts} accounts). Exact p-values, so the "
            f"detection threshold alpha = {s.alpha:g} is the false-positive rate.",
            "",
            f"**Detection rate at FPR {s.alpha:g} vs answer length** (answers truncated to the first "
            "N tokens; n = answers at least that long)",
            "",
            _table(["scheme", "tokens", "n", "detected", "median log10 p"], self.power),
            "",
            f"**False positives at alpha = {s.alpha:g}** (texts with at least the scheme's minimum "
            "of scored tokens; 'allowed' is the 99.9 % quantile of Binomial(n, alpha))",
            "",
            _table(["text", "scheme", "n", "positives", "FPR", "allowed", "min p"], self.fpr),
            "",
            f"**Account payload on the full answers** (blind: decoded with no candidate list; traced: "
            f"best of {s.n_accounts + s.n_decoys} candidate accounts, Bonferroni-corrected, at alpha "
            f"{s.alpha:g}, 'separated' by the exact sign test against the runner-up)",
            "",
            _table(
                [
                    "scheme",
                    "n",
                    "blind right",
                    "blind wrong",
                    "blind none",
                    "traced right",
                    "traced wrong",
                    "traced separated",
                ],
                self.payload,
            ),
            "",
            f"**Generation overhead** (same process, same prompts, {s.overhead_steps} new tokens, "
            f"{s.overhead_repeats} repeats of plain and watermarked runs back to back; seconds per "
            "decoding step (prefill included), medians; ratio = median of the paired ratios (range). "
            "'in process()' is the time inside the numpy scheme — the part the watermark adds. On a "
            "machine shared with other jobs the end-to-end ratio is noisy, and the answers differ in "
            "length and content; the time inside process() is the stable measure)",
            "",
            _table(
                [
                    "scheme",
                    "batch",
                    "s/step plain",
                    "s/step watermarked",
                    "ratio",
                    "in process()",
                    "share of step",
                ],
                self.overhead,
            ),
        ]
        if self.notes:
            out += ["", *[f"- {n}" for n in self.notes]]
        return "\n".join(out)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# -- data ------------------------------------------------------------------------------------------
def heldout_prompts(n: int, offset: int = PROMPT_OFFSET, max_chars: int = 400) -> list[str]:
    """The first ``n`` first-turn prompts of 20–``max_chars`` characters from conversation #offset."""
    from distillguard.data.corpora import iter_sharegpt

    out: list[str] = []
    for i, conv in enumerate(iter_sharegpt()):
        p = conv.first_prompt
        if i >= offset and p and 20 <= len(p.strip()) <= max_chars:
            out.append(p.strip())
            if len(out) == n:
                break
    return out


def null_corpora(n: int, offset: int = HUMAN_OFFSET) -> dict[str, list[str]]:
    """Texts the key never touched: ShareGPT user turns, ChatGPT answers, HumanEval prompts."""
    from distillguard.data.corpora import human_eval_prompts, iter_sharegpt

    human: list[str] = []
    chatgpt: list[str] = []
    for i, conv in enumerate(iter_sharegpt()):
        if i < offset:
            continue
        for role, text in conv.turns:
            if len(text) < 200:
                continue
            if role == "human" and len(human) < n:
                human.append(text[:8000])
            elif role == "gpt" and len(chatgpt) < n:
                chatgpt.append(text[:8000])
        if len(human) >= n and len(chatgpt) >= n:
            break
    return {
        "ShareGPT user turns (human)": human,
        "ShareGPT ChatGPT answers": chatgpt,
        "HumanEval prompts (human)": [p["prompt"] for p in human_eval_prompts()],
    }


def eval_key(seed: int, purpose: str = "main") -> SecretKey:
    """A fixed key for the evaluation (so cached generations stay valid across runs)."""
    return SecretKey(hashlib.sha256(f"distillguard-eval/{purpose}/{seed}".encode()).digest())


def cached_generate(
    generator: Any,
    scheme: WatermarkScheme | None,
    prompts: Sequence[str],
    payloads: Sequence[int | None],
    settings: EvalSettings,
    cache_dir: Path | None,
) -> list[dict[str, Any]]:
    """Generate (or read from the cache) one record per prompt: text, token_ids, payload."""
    desc = json.dumps(
        {
            "scheme": repr(scheme) if scheme is not None else None,
            "prompts": hashlib.sha256("\n\x00".join(prompts).encode()).hexdigest(),
            "payloads": list(payloads),
            "max_new_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
        },
        sort_keys=True,
    )
    path = None
    if cache_dir is not None:
        tag = scheme.name if scheme is not None else "plain"
        path = cache_dir / f"eval-{tag}-{hashlib.sha256(desc.encode()).hexdigest()[:16]}.jsonl"
        if path.is_file():
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    gens = generator.with_scheme(scheme).generate(
        list(prompts),
        list(payloads) if scheme is not None else None,
        max_new_tokens=settings.max_new_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        seed=settings.seed,
        batch_size=settings.batch_size,
    )
    recs = [
        {"text": g.text, "token_ids": list(g.token_ids), "payload": p, "finish_reason": g.finish_reason}
        for g, p in zip(gens, payloads, strict=True)
    ]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
        tmp.replace(path)
    return recs


# -- the evaluation ----------------------------------------------------------------------------------
def run_eval(
    settings: EvalSettings | None = None,
    *,
    generator: Any = None,
    cache_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Run the whole evaluation; see the module docstring. Loads SmolLM2 unless given a Generator."""
    from distillguard.model._paths import cache_root
    from distillguard.model.tokenizer import load_text_tokenizer

    s = settings or EvalSettings()
    say = progress or (lambda _m: None)
    cache_dir = cache_dir if cache_dir is not None else cache_root() / "eval"
    key, other = eval_key(s.seed), eval_key(s.seed, "other")
    schemes = {name: cli_scheme(name, key) for name in SCHEMES}
    accounts = [f"eval-account-{i}" for i in range(s.n_accounts)]
    prompts = heldout_prompts(s.n_prompts)
    names = [accounts[i % len(accounts)] for i in range(len(prompts))]
    payloads = [account_id(key, a, PAYLOAD_BITS) for a in names]
    if generator is None:
        from distillguard.model.generate import Generator

        say("loading SmolLM2 ...")
        generator = Generator.load()
    report = EvalReport(settings=s)

    t0 = time.perf_counter()
    gens: dict[str, list[dict[str, Any]]] = {}
    for name, scheme in [*schemes.items(), ("plain", None)]:
        say(f"generating {len(prompts)} answers ({name}) ...")
        gens[name] = cached_generate(generator, scheme, prompts, payloads, s, cache_dir)
    report.notes.append(
        f"generating the {3 * len(prompts)} answers took {time.perf_counter() - t0:.0f} s "
        f"(about 0 when they come from the on-disk cache, {cache_dir})"
    )

    say("scoring ...")
    for name, scheme in schemes.items():
        for length in (n for n in s.lengths if n <= s.max_new_tokens):
            ids = [
                np.asarray(r["token_ids"][:length], dtype=np.int64)
                for r in gens[name]
                if len(r["token_ids"]) >= length
            ]
            dets = [scheme.detect(x, alpha=s.alpha, decode_payload=False) for x in ids]
            report.power.append(_power_row(name, str(length), dets))
        full = [
            scheme.detect(np.asarray(r["token_ids"], dtype=np.int64), alpha=s.alpha, decode_payload=False)
            for r in gens[name]
        ]
        lens = sorted(len(r["token_ids"]) for r in gens[name])
        report.power.append(_power_row(name, f"full (median {lens[len(lens) // 2]})", full))

    tok = load_text_tokenizer()
    corpora = null_corpora(s.n_human)
    corpora["SmolLM2, no watermark"] = [r["text"] for r in gens["plain"]]
    other_schemes = {name: cli_scheme(name, other) for name in SCHEMES}
    for corpus, texts in corpora.items():
        ids_list = [x[:4000] for x in tok.encode_batch(texts)]
        for name, scheme in schemes.items():
            report.fpr.append(
                _fpr_row(corpus, name, [scheme.detect(x, alpha=s.alpha) for x in ids_list], s.alpha)
            )
    for name in SCHEMES:  # answers watermarked under another key, tested with ours
        ids_list = [tok.encode(r["text"]) for r in gens[name]]
        dets = [other_schemes[name].detect(x, alpha=s.alpha) for x in ids_list]
        report.fpr.append(_fpr_row("SmolLM2 watermarked, another key", name, dets, s.alpha))

    decoys = [f"decoy-account-{i}" for i in range(s.n_decoys)]
    for name, scheme in schemes.items():
        report.payload.append(
            _payload_row(name, scheme, gens[name], names, payloads, [*accounts, *decoys], s)
        )

    say("timing the logits processor ...")
    report.overhead = overhead_rows(generator, schemes, prompts[:16], s)
    return report


def _power_row(name: str, length: str, dets: list[Detection]) -> list[Any]:
    if not dets:
        return [name, length, 0, "-", "-"]
    hits = sum(d.watermarked for d in dets)
    med = float(np.median([d.log10_p_value for d in dets]))
    return [name, length, len(dets), f"{hits / len(dets):.0%}", f"{med:.1f}"]


def _fpr_row(corpus: str, name: str, dets: list[Detection], alpha: float) -> list[Any]:
    from scipy import stats as st

    usable = [d for d in dets if d.enough_tokens]
    n = len(usable)
    pos = sum(d.watermarked for d in usable)
    allowed = int(st.binom.ppf(0.999, n, alpha)) if n else 0
    min_p = min((d.p_value for d in usable), default=1.0)
    return [corpus, name, n, pos, f"{pos / n:.4f}" if n else "-", allowed, f"{min_p:.1e}"]


def _payload_row(
    name: str,
    scheme: Any,
    recs: list[dict[str, Any]],
    names: list[str],
    payloads: list[int],
    candidates: list[str],
    s: EvalSettings,
) -> list[Any]:
    right = wrong = none = t_right = t_wrong = t_sep = 0
    for rec, acct, pid in zip(recs, names, payloads, strict=True):
        ids = np.asarray(rec["token_ids"], dtype=np.int64)
        det = scheme.detect(ids, alpha=s.alpha)
        v = det.payload.value if det.payload is not None else None
        right += v == pid
        wrong += v is not None and v != pid
        none += v is None
        tr = scheme.trace(ids, candidates, alpha=s.alpha)
        if tr.significant:
            t_right += tr.account == acct
            t_wrong += tr.account != acct
            t_sep += tr.separated and tr.account == acct
    return [name, len(recs), right, wrong, none, t_right, t_wrong, t_sep]


class _TimedScheme(WatermarkScheme):
    """Delegates to a scheme and accumulates the seconds spent in ``process``."""

    def __init__(self, inner: WatermarkScheme) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.seconds = 0.0

    def process(
        self, input_ids: np.ndarray, scores: np.ndarray, payloads: Sequence[int | None]
    ) -> np.ndarray:
        t = time.perf_counter()
        out = self.inner.process(input_ids, scores, payloads)
        self.seconds += time.perf_counter() - t
        return out

    def detect(self, token_ids: Any, **kwargs: Any) -> Detection:
        return self.inner.detect(token_ids, **kwargs)

    def trace(self, token_ids: Any, candidates: Any, **kwargs: Any) -> Any:
        return self.inner.trace(token_ids, candidates, **kwargs)


def overhead_rows(
    generator: Any, schemes: dict[str, WatermarkScheme], prompts: list[str], s: EvalSettings
) -> list[list[Any]]:
    """Seconds per decoding step, plain vs watermarked, per batch size.

    Each repeat runs plain and every scheme back to back on the same prompts; the ratio is the
    median over repeats of the paired ratios (adjacent runs see similar machine load), and the
    seconds per step are medians too. The per-step time includes the prompt prefill.
    """
    rows: list[list[Any]] = []
    for batch in s.overhead_batches:
        ps = (prompts * batch)[:batch]
        per: dict[str, list[float]] = {}
        inside: dict[str, list[float]] = {}
        for _ in range(s.overhead_repeats):
            for name in ("plain", *schemes):
                timed = _TimedScheme(schemes[name]) if name != "plain" else None
                g = generator.with_scheme(timed)
                t = time.perf_counter()
                out = g.generate(
                    ps,
                    [7] * batch if timed else None,
                    max_new_tokens=s.overhead_steps,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    seed=s.seed,
                    batch_size=batch,
                )
                steps = max(o.completion_tokens for o in out)
                per.setdefault(name, []).append((time.perf_counter() - t) / steps)
                inside.setdefault(name, []).append(timed.seconds / steps if timed else 0.0)
        plain = np.asarray(per["plain"])
        for name in schemes:
            wm = np.asarray(per[name])
            rows.append(
                [
                    name,
                    batch,
                    f"{np.median(plain):.4f}",
                    f"{np.median(wm):.4f}",
                    f"{np.median(wm / plain):.2f} ({np.min(wm / plain):.2f}–{np.max(wm / plain):.2f})",
                    f"{np.median(inside[name]) * 1e3:.2f} ms",
                    f"{np.median(np.asarray(inside[name]) / wm):.1%}",
                ]
            )
    return rows
