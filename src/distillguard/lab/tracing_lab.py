"""Account tracing measured on real students: which account's outputs did the student learn from?

The distillation lab (:mod:`~distillguard.lab.run`) harvests once, as one anonymous extraction
account. Here the scheme carries an account payload (the gateway's 32-bit width) and the harvest
is served to accounts drawn at random among ``n_candidates`` (a million by default):

- ``single`` — every answer served to one account;
- ``collusion`` — the same prompts split round-robin among ``n_colluders`` accounts;
- ``clean-control`` — the same prompts answered with the watermark off (it must name nobody).

Each student is trained exactly as the lab trains its students (same architecture, budget and
vocabulary recipe), then queried black-box on held-out ShareGPT prompts. At several query counts
its answers are traced against every candidate (:func:`~distillguard.provenance.trace_accounts`,
Holm over all candidates, step-down for colluders) and decoded with no candidate list
(:func:`~distillguard.provenance.decode_accounts`). Null control: the same tracing under
never-used keys on each distilled student's answers must name nobody.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.lab.harvest import chat_prompt_ids, harvest, sharegpt_prompts
from distillguard.lab.run import training_pairs
from distillguard.lab.student import StudentConfig, Vocab, student_vocab, train_student
from distillguard.provenance.radioactivity import radioactivity_test
from distillguard.provenance.tracing import AccountTrace, MinCount, decode_accounts, trace_accounts
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.keys import SecretKey
from distillguard.watermark.payload import account_id

__all__ = [
    "DecodeOutcome",
    "TraceOutcome",
    "TracingLabConfig",
    "TracingLabResult",
    "TracingStudent",
    "account_names",
    "pick_accounts",
    "run_tracing_lab",
]


def account_names(n: int) -> list[str]:
    """The lab's candidate account names, ``acct-0000000`` … (what the gateway keys ids on)."""
    return [f"acct-{i:07d}" for i in range(n)]


def pick_accounts(n_candidates: int, k: int, seed: int) -> list[int]:
    """Indices of ``k`` distinct accounts drawn at random (seeded) among ``n_candidates``.

    >>> pick_accounts(10, 3, 0) == pick_accounts(10, 3, 0)
    True
    """
    rng = np.random.default_rng([seed, 0x7ACE])
    return [int(i) for i in rng.choice(n_candidates, size=k, replace=False)]


@dataclass(frozen=True)
class TracingLabConfig:
    """Sizes of a tracing run (harvest and student settings default to the lab's)."""

    n_harvest: int = 240
    n_queries: int = 1000
    max_new_tokens: int = 96  # harvest answers
    query_tokens: int = 96  # suspect answers
    harvest_temperature: float = 0.8
    student: StudentConfig = field(default_factory=StudentConfig)
    n_candidates: int = 1 << 20
    n_colluders: int = 3
    alpha: float = 1e-6
    query_marks: tuple[int, ...] = (100, 300, 1000, 3000)
    min_counts: tuple[MinCount, ...] = (1, 3)  # trace_accounts(min_count=...) settings to report
    n_null_keys: int = 5
    clean_control: bool = True
    collusion: bool = True
    seed: int = 0


@dataclass(frozen=True)
class DecodeOutcome:
    """:func:`decode_accounts` with no candidate list: the account it names (or None)."""

    account: str | None  # a candidate's name, "id <n> (not a candidate)", or None
    log10_p_value: float
    bits_decided: int
    bits_total: int
    checksum_ok: bool


@dataclass(frozen=True)
class TraceOutcome:
    """Tracing one student's first ``n_queries`` answers."""

    n_queries: int
    min_count: MinCount
    n_tokens: int
    n_scored: int
    radioactivity_log10_p: float  # the standard audit (every distinct tuple), for reference
    anchor_log10_p: float  # its anchor slots alone (0 without anchors): what a mix of accounts keeps
    trace: AccountTrace
    decode: DecodeOutcome
    correct: bool  # named exactly the accounts that were served (nobody for a control)
    seconds: float


@dataclass(frozen=True)
class TracingStudent:
    """One student: whom it was trained on and its traces at each query count."""

    name: str
    served_to: tuple[str, ...]
    train_tokens: int
    final_loss: float
    train_seconds: float
    outcomes: tuple[TraceOutcome, ...]
    null_keys: tuple[TraceOutcome, ...] = ()  # all queries, never-used keys


@dataclass(frozen=True)
class TracingLabResult:
    """Everything the tracing run measured."""

    config: TracingLabConfig
    scheme: str
    scheme_config: dict[str, Any]
    key_id: str
    n_params: int
    harvest_seconds: float
    students: tuple[TracingStudent, ...]
    seconds: float


class _Names:
    """Decoded id → candidate name under one key (the table is built on first use: ~1 s per 10^6)."""

    def __init__(self, key: SecretKey, bits: int, candidates: list[str]) -> None:
        self.key, self.bits, self.candidates = key, bits, candidates
        self._ids: np.ndarray | None = None
        self._order: np.ndarray | None = None

    def __call__(self, value: int) -> str:
        if self._ids is None or self._order is None:
            self._ids = np.array(
                [account_id(self.key, c, self.bits) for c in self.candidates], dtype=np.uint64
            )
            self._order = np.argsort(self._ids, kind="stable")
        sorted_ids = self._ids[self._order]
        i = int(np.searchsorted(sorted_ids, np.uint64(value)))
        if i < sorted_ids.size and int(sorted_ids[i]) == value:
            return self.candidates[int(self._order[i])]
        return f"id {value} (not a candidate)"


def _answers_path(
    cache_dir: Path,
    name: str,
    seqs: list[np.ndarray],
    vocab: Vocab,
    cfg: TracingLabConfig,
    queries: list[list[int]],
) -> Path:
    h = hashlib.sha256(vocab.identity())
    for part in (*seqs, *(np.asarray(q, dtype=np.int64) for q in queries)):
        h.update(np.asarray(part, dtype=np.int64).tobytes() + b"|")
    h.update(repr((asdict(cfg.student), cfg.query_tokens, cfg.seed)).encode())
    return Path(cache_dir) / f"answers-{name}-{h.hexdigest()[:12]}.json"


def _decode(
    scheme: WatermarkScheme, answers: list[np.ndarray], alpha: float, names: _Names, min_count: MinCount
) -> DecodeOutcome:
    est = decode_accounts(scheme, answers, alpha=alpha, min_count=min_count)
    name = names(est.value) if est.value is not None else None
    lp = float(np.log10(est.p_value)) if est.p_value > 0 else -np.inf
    return DecodeOutcome(name, lp, est.bits_decided, est.bits_total, est.checksum_ok)


def _trace_at(
    scheme: WatermarkScheme,
    answers: list[np.ndarray],
    m: int,
    candidates: list[str],
    served: tuple[str, ...],
    alpha: float,
    names: _Names,
    min_count: MinCount,
) -> TraceOutcome:
    t0 = time.perf_counter()
    sub = answers[:m]
    tr = trace_accounts(scheme, sub, candidates, alpha=alpha, min_count=min_count)
    dec = _decode(scheme, sub, alpha, names, min_count)
    radio = radioactivity_test(scheme, sub, alpha=alpha, curve_points=0)
    return TraceOutcome(
        n_queries=len(sub),
        min_count=min_count,
        n_tokens=int(sum(a.size for a in sub)),
        n_scored=tr.n_scored,
        radioactivity_log10_p=radio.log10_p_value,
        anchor_log10_p=float(radio.details.get("anchor_log10_p_value", 0.0)),
        trace=tr,
        decode=dec,
        correct=set(tr.named) == set(served) and tr.verdict != "inseparable",
        seconds=time.perf_counter() - t0,
    )


def run_tracing_lab(
    generator: Any,
    scheme: WatermarkScheme,
    cache_dir: Path,
    config: TracingLabConfig | None = None,
    *,
    log: Callable[[str], None] = print,
) -> TracingLabResult:
    """Harvest as chosen accounts, train students, trace them among ``n_candidates`` accounts.

    ``scheme`` must be a payload-mode KGW or Gumbel holding our key.

    Raises:
        ConfigError: the scheme has no payload.
        DependencyError: torch/transformers or the corpora are not installed.
    """
    cfg = config or TracingLabConfig()
    t_start = time.perf_counter()
    key: SecretKey = scheme.keyring.primary  # type: ignore[attr-defined]
    bits = int(scheme.config.payload_bits)  # type: ignore[attr-defined]
    candidates = account_names(cfg.n_candidates)
    picks = pick_accounts(cfg.n_candidates, 1 + cfg.n_colluders, cfg.seed)
    single, colluders = candidates[picks[0]], tuple(candidates[i] for i in picks[1:])
    ids = {candidates[i]: account_id(key, candidates[i], bits) for i in picks}
    names = _Names(key, bits, candidates)

    prompts = sharegpt_prompts(cfg.n_harvest)
    wm_gen = generator.with_scheme(scheme)
    runs: dict[str, tuple[Any, tuple[str, ...], list[int | None] | None]] = {
        "single": (wm_gen, (single,), [ids[single]] * len(prompts))
    }
    if cfg.collusion:
        runs["collusion"] = (
            wm_gen,
            colluders,
            [ids[colluders[i % len(colluders)]] for i in range(len(prompts))],
        )
    if cfg.clean_control:
        runs["clean-control"] = (generator.with_scheme(None), (), None)
    t0 = time.perf_counter()
    corpora: dict[str, list[np.ndarray]] = {}

    def progress(name: str) -> Callable[[int, int], None]:
        return lambda d, n: log(f"harvest {name}: {d}/{n}")

    for name, (gen, _, payloads) in runs.items():
        tag = "clean" if payloads is None else f"trace-{'single' if name == 'single' else 'collude'}"
        recs = harvest(
            gen,
            prompts,
            cache_dir=cache_dir,
            tag=tag,
            payloads=payloads,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.harvest_temperature,
            seed=cfg.seed,
            progress=progress(name),
        )
        corpora[name] = training_pairs(recs)
    harvest_seconds = time.perf_counter() - t0
    vocab = student_vocab(cfg.student, [s for seqs in corpora.values() for s in seqs])
    held = sharegpt_prompts(cfg.n_queries, offset=cfg.n_harvest)
    held_ids = chat_prompt_ids(generator.tokenizer, held)
    marks = sorted({m for m in cfg.query_marks if m < len(held_ids)} | {len(held_ids)})
    log(
        f"{len(candidates):,} candidates; single {single}, colluders {', '.join(colluders)}; "
        f"{len(held_ids)} held-out queries; vocabulary {vocab.size}"
    )

    null_rng = np.random.default_rng([cfg.seed, 0x0DDC0DE])
    students: list[TracingStudent] = []
    n_params = 0
    for name, (_, served, _) in runs.items():
        seqs = corpora[name]
        # the student's answers are cached (keyed by its training data, config and queries) so
        # that tracing can be re-run without retraining
        path = _answers_path(cache_dir, name, seqs, vocab, cfg, held_ids)
        if path.exists():
            cached = json.loads(path.read_text(encoding="utf-8"))
            answers = [np.asarray(a, dtype=np.int64) for a in cached["answers"]]
            n_params, loss, train_s = cached["n_params"], cached["loss"], cached["train_seconds"]
            log(f"{name}: {len(answers)} cached answers ({path.name})")
        else:
            student = train_student(seqs, vocab, cfg.student)
            n_params, train_s = student.n_params, student.seconds
            loss = student.final_loss
            log(f"{name}: trained in {student.seconds:.0f} s, loss {loss:.2f}")
            t_ans = time.perf_counter()
            answers = student.answer(held_ids, max_new_tokens=cfg.query_tokens, seed=cfg.seed)
            log(f"{name}: {len(answers)} answers in {time.perf_counter() - t_ans:.0f} s")
            doc: dict[str, Any] = {"n_params": n_params, "loss": loss, "train_seconds": train_s}
            doc["answers"] = [a.tolist() for a in answers]
            path.write_text(json.dumps(doc), encoding="utf-8")
        outcomes = []
        for m in marks:
            for mc in cfg.min_counts:
                out = _trace_at(scheme, answers, m, candidates, served, cfg.alpha, names, mc)
                outcomes.append(out)
                best = out.trace.top[0]
                log(
                    f"{name} @{m} queries, min count {mc}: {out.trace.verdict} {list(out.trace.named)} "
                    f"(best {best.account} log10 p_holm {best.log10_p_holm:.1f}); "
                    f"decode {out.decode.account}; {out.n_scored} tuples; {out.seconds:.0f} s"
                )
        nulls: list[TraceOutcome] = []
        if served:
            for _ in range(cfg.n_null_keys):
                k = SecretKey(null_rng.bytes(32))
                other = type(scheme)(scheme.config, k)  # type: ignore[attr-defined, call-arg]
                knames = _Names(k, bits, candidates)
                for mc in cfg.min_counts:
                    nulls.append(
                        _trace_at(other, answers, len(answers), candidates, (), cfg.alpha, knames, mc)
                    )
            log(f"{name}: never-used keys name {[o.trace.named for o in nulls]}")
        students.append(
            TracingStudent(
                name,
                served,
                int(sum(s.size for s in seqs)),
                loss,
                train_s,
                tuple(outcomes),
                tuple(nulls),
            )
        )
    return TracingLabResult(
        config=cfg,
        scheme=scheme.name,
        scheme_config=asdict(scheme.config),  # type: ignore[attr-defined]
        key_id=key.key_id,
        n_params=n_params,
        harvest_seconds=harvest_seconds,
        students=tuple(students),
        seconds=time.perf_counter() - t_start,
    )
