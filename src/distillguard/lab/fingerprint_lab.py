"""The fingerprint lab: canaries and behavioural fingerprints against real distilled students.

One extraction account among several flagged ones is served in canary mode by the gateway's own
:class:`~distillguard.gateway.canary.CanaryService` while it sweeps topics (the canary concepts
included) and ordinary ShareGPT prompts; SmolLM2 (watermarked, as served) answers, and the
service restyles the answers (style canaries) and appends alias sentences. Students:

- ``distilled-s<k>`` — trained on that account's harvest (canary sentences included), seed k;
- ``control-<i>`` — trained on ShareGPT ChatGPT answers (disjoint slices, own seeds): they are
  the suspects that must *not* be flagged;
- ``reference-<i>`` — more such independent students, used only as behavioural references
  (with ShareGPT's ChatGPT answers), never as suspects;
- ``scrubbed`` — ``distilled-s0`` further fine-tuned on clean ChatGPT text;
- ``paraphrased`` — trained on the harvest after SmolLM2 paraphrased every answer.

Every suspect is audited the way ``distillguard audit`` does it: the canary probe questions of
the registry (:func:`~distillguard.provenance.lines.canary_line`, Holm over every account that
was served canaries), the style canaries in all of its answers
(:func:`~distillguard.provenance.lines.style_line`, plus ``style_probes`` more held-out prompts),
the behavioural probes against our model and the references
(:func:`~distillguard.provenance.lines.behaviour_line`, and
:func:`~distillguard.provenance.lines.predictability_line`: SmolLM2 scores every suspect's and
reference student's probe answers), and the watermark's black-box
radioactivity test on the same probe answers. The quality cost of canary mode is measured on the
served answers themselves. torch is imported lazily (an edge of the library, run by
``bench/lab_fingerprint.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.canaries import PROBE_FORMS, CanaryConfig, CanarySet, alias_reproduced
from distillguard.fingerprint.combine import CombinedEvidence, Evidence, combine_evidence
from distillguard.fingerprint.concepts import default_concepts
from distillguard.lab.canary_cost import QualityCost, canary_exposures, quality_cost, token_ids
from distillguard.lab.harvest import (
    PARAPHRASE_ASK,
    HarvestRecord,
    chat_prompt_ids,
    harvest,
    sharegpt_prompts,
)
from distillguard.lab.student import Student, StudentConfig, student_vocab, train_student
from distillguard.model.likelihood import answer_mean_nll
from distillguard.provenance.lines import (
    BehaviourLine,
    CanaryLine,
    StyleLine,
    behaviour_line,
    canary_line,
    canary_prompts,
    predictability_line,
    style_line,
)
from distillguard.provenance.probes import sharegpt_answers
from distillguard.watermark.base import WatermarkScheme
from distillguard.watermark.keys import SecretKey

__all__ = [
    "FingerprintLabConfig",
    "FingerprintLabResult",
    "LabHarvests",
    "QualityCost",
    "SuspectResult",
    "auroc",
    "collect_harvests",
    "control_slices",
    "run_fingerprint_lab",
    "sweep_prompts",
]

SWEEP_TEMPLATES = (
    "Explain {c} in simple terms.",
    "What is {c}? Give a short overview.",
    "How does {c} work, and where is it used?",
)
@dataclass(frozen=True)
class FingerprintLabConfig:
    """Sizes of the fingerprint lab (defaults: about 35 minutes on one CPU thread, uncached).

    Attributes:
        accounts: accounts enrolled in canary mode (all of them enter the Holm correction).
        distiller: index of the account that harvests (and whose answers are distilled).
        sweep_repeats: topic-sweep prompts per canary concept (templates rotate).
        sweep_concepts: sweep only this many concepts, drawn at random (0 = every concept).
        n_sharegpt: ordinary ShareGPT prompts the extraction account also sends.
        max_new_tokens, temperature: SmolLM2's answers (harvest and behavioural probes).
        n_probes: behavioural probe prompts (held-out ShareGPT prompts with a ChatGPT answer).
        style_probes: more held-out ShareGPT prompts every suspect answers (``style_tokens`` new
            tokens each) for the style-canary line, which reads all of a suspect's answers.
        student: architecture and budget of every student.
        n_distilled, n_controls, n_references: students of each kind.
        scrub_steps: extra fine-tuning steps of the scrubbed student on clean text.
        paraphrase: train the paraphrased student (one more SmolLM2 pass over the harvest).
        proxy: train a *proxy* of our model — a student of SmolLM2's answers to other prompts,
            same recipe and size as the reference students (one more SmolLM2 pass) — and run a
            second behavioural line with the proxy's answers in place of our model's, against
            the reference students only: a baseline of the suspect's own kind (tiny students),
            where our fluent model and tiny references are not exchangeable.
        quality_answers: touched answers scored for perplexity with and without the canary.
        traffic_conversations: ShareGPT conversations used for the share of ordinary answers
            that canary mode touches.
        alpha: significance level of the audit (canaries and behaviour).
        seed: harvest sampling, data order and the student seeds' base.
    """

    accounts: int = 8
    distiller: int = 3
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    sweep_repeats: int = 1
    sweep_concepts: int = 0
    n_sharegpt: int = 600
    max_new_tokens: int = 64
    temperature: float = 0.8
    n_probes: int = 100
    style_probes: int = 300
    style_tokens: int = 128
    student: StudentConfig = field(default_factory=lambda: StudentConfig(steps=300))
    n_distilled: int = 3
    n_controls: int = 3
    n_references: int = 2
    scrub_steps: int = 100
    paraphrase: bool = True
    proxy: bool = True
    quality_answers: int = 40
    traffic_conversations: int = 2000
    alpha: float = 1e-6
    seed: int = 0

    def __post_init__(self) -> None:
        ints = ("accounts", "sweep_repeats", "max_new_tokens", "n_probes", "n_distilled", "n_controls",
                "n_references")
        for name in ints:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"The {name!r} parameter of FingerprintLabConfig must be an int ≥ 1. "
                                  f"Got {v!r} instead.")
        counts = ("sweep_concepts", "n_sharegpt", "scrub_steps", "quality_answers", "traffic_conversations",
                  "style_probes", "style_tokens")
        for name in counts:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"The {name!r} parameter of FingerprintLabConfig must be an int ≥ 0. "
                                  f"Got {v!r} instead.")
        if not 0 <= self.distiller < self.accounts:
            raise ConfigError(f"The 'distiller' parameter of FingerprintLabConfig must be an account index "
                              f"in [0, {self.accounts}). Got {self.distiller!r} instead.")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"The 'alpha' parameter of FingerprintLabConfig must be a float in (0, 1). "
                              f"Got {self.alpha!r} instead.")

    @property
    def account_ids(self) -> tuple[str, ...]:
        return tuple(f"account-{i}" for i in range(self.accounts))

    @property
    def distiller_id(self) -> str:
        return self.account_ids[self.distiller]


def sweep_prompts(concepts: Sequence[str], repeats: int, rng: np.random.Generator) -> list[str]:
    """An extraction account's topic sweep: ``repeats`` questions per concept, templates rotating."""
    out = [SWEEP_TEMPLATES[(i + r) % len(SWEEP_TEMPLATES)].format(c=c)
           for r in range(repeats) for i, c in enumerate(concepts)]
    return [out[i] for i in rng.permutation(len(out))]


@dataclass(frozen=True)
class LabHarvests:
    """Everything SmolLM2 produced for the lab (all cached on disk)."""

    registry: CanarySet
    records: tuple[HarvestRecord, ...]       # the distiller's answers as generated
    styled: tuple[str, ...]                  # the same answers in the account's style canaries
    served: tuple[str, ...]                  # as served: styled, canary sentence added
    paraphrased: tuple[str, ...]             # SmolLM2's paraphrase of each served answer ('' if off)
    probes: tuple[str, ...]                  # behavioural probe prompts
    ours: tuple[str, ...]                    # our model's answers to them
    chatgpt: tuple[str, ...]                 # ShareGPT's ChatGPT answers to them (same token budget)
    style_probes: tuple[str, ...]            # prompts every suspect answers for the style line
    proxy: tuple[HarvestRecord, ...]         # our model's answers to other prompts (proxy's data)
    seconds: float


def _canary_service(key: SecretKey, cache_dir: Path, cfg: FingerprintLabConfig) -> Any:
    from distillguard.gateway.canary import CanaryService

    path = cache_dir / f"fp-canaries-{cfg.accounts}-{cfg.canary.per_account}-{cfg.canary.decoys}.json"
    service = CanaryService(key, path, config=cfg.canary)
    for account in cfg.account_ids:
        service.enroll(account)
    return service


def collect_harvests(
    generator: Any,
    scheme: WatermarkScheme,
    key: SecretKey,
    cache_dir: Path,
    config: FingerprintLabConfig | None = None,
    *,
    log: Callable[[str], None] = print,
) -> LabHarvests:
    """Run (or load from ``cache_dir``) every SmolLM2 pass of the lab.

    The gateway's canary service enrols ``config.accounts`` accounts under ``key`` and plants the
    distiller's canaries in its answers exactly as ``distillguard serve`` would.

    Raises:
        InputError: fewer probe prompts with a ChatGPT answer than ``n_probes``.
    """
    cfg = config or FingerprintLabConfig()
    t0 = time.perf_counter()
    service = _canary_service(key, cache_dir, cfg)
    rng = np.random.default_rng(cfg.seed)
    concepts = default_concepts()
    if cfg.sweep_concepts:
        concepts = tuple(concepts[i] for i in np.sort(rng.permutation(len(concepts))[: cfg.sweep_concepts]))
    prompts = sweep_prompts(concepts, cfg.sweep_repeats, rng) + sharegpt_prompts(cfg.n_sharegpt)
    prompts = [prompts[i] for i in rng.permutation(len(prompts))]

    def progress(tag: str) -> Callable[[int, int], None]:
        return lambda d, n: log(f"{tag}: {d}/{n}")

    n_new = cfg.max_new_tokens
    records = harvest(generator.with_scheme(scheme), prompts, cache_dir=cache_dir, tag="fp-harvest",
                      max_new_tokens=n_new, temperature=cfg.temperature, seed=cfg.seed,
                      progress=progress("harvest"))
    # Served exactly as the gateway serves an enrolled account: restyled, then the alias sentence.
    styled = [service.restyle(cfg.distiller_id, r.text) for r in records]
    served = [t if (m := service.mark(cfg.distiller_id, r.prompt, t)) is None else t.rstrip() + " " + m
              for r, t in zip(records, styled, strict=True)]
    paraphrased: list[str] = [""] * len(served)
    if cfg.paraphrase:
        asks = [PARAPHRASE_ASK.format(text=s) for s in served]
        para = harvest(generator.with_scheme(None), asks, cache_dir=cache_dir, tag="fp-paraphrase",
                       max_new_tokens=n_new + 16, temperature=0.7, seed=cfg.seed,
                       progress=progress("paraphrase"))
        paraphrased = [r.text for r in para]
    # Behavioural probes: held-out ShareGPT prompts (far past the harvest's) with a ChatGPT answer.
    candidates = sharegpt_prompts(cfg.n_probes * 2, offset=1000, max_chars=400)
    chat = sharegpt_answers(candidates)
    probes = [p for p in candidates if chat.get(p, "").strip()][: cfg.n_probes]
    if len(probes) < cfg.n_probes:
        raise InputError(f"Only {len(probes)} probe prompts have a ChatGPT answer; need {cfg.n_probes}.")
    ours = harvest(generator.with_scheme(scheme), probes, cache_dir=cache_dir, tag="fp-ours",
                   max_new_tokens=n_new, temperature=cfg.temperature, seed=cfg.seed + 7,
                   progress=progress("our probe answers"))
    taken = set(prompts) | set(candidates)
    style_probes = [p for p in sharegpt_prompts(cfg.style_probes * 2, offset=2000, max_chars=400)
                    if p not in taken][: cfg.style_probes]
    proxy: list[HarvestRecord] = []
    if cfg.proxy:
        # as many prompts as the harvest (similar size), far past every other prompt set
        asks = [p for p in sharegpt_prompts(len(prompts) * 2, offset=5000) if p not in taken
                and p not in style_probes][: len(prompts)]
        proxy = harvest(generator.with_scheme(scheme), asks, cache_dir=cache_dir, tag="fp-proxy",
                        max_new_tokens=n_new, temperature=cfg.temperature, seed=cfg.seed + 11,
                        progress=progress("proxy data"))
    return LabHarvests(
        registry=service.registry, records=tuple(records), styled=tuple(styled), served=tuple(served),
        paraphrased=tuple(paraphrased), probes=tuple(probes), ours=tuple(r.text for r in ours),
        # ChatGPT's answers cut to the same token budget as every other model's: a reference much
        # longer than ours would lose every character-n-gram comparison by length alone.
        chatgpt=tuple(generator.tokenizer.decode(token_ids(generator.tokenizer, chat[p])[:n_new],
                                                 skip_special_tokens=True) for p in probes),
        style_probes=tuple(style_probes),
        proxy=tuple(proxy),
        seconds=time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class SuspectResult:
    """One student's audit, every line of evidence as ``distillguard audit`` reports it.

    ``kind`` is ``distilled``, ``control`` or ``reference`` (independent students), or a survival
    case (``scrubbed``, ``paraphrased``). References are behavioural references, so they have
    no behavioural line of their own (``behaviour`` is None).
    """

    name: str
    kind: str
    train_tokens: int
    final_loss: float
    train_seconds: float
    canary: CanaryLine
    style: StyleLine
    behaviour: BehaviourLine | None
    watermark_log10_p: float
    combined: CombinedEvidence
    canary_answer_example: str
    behaviour_proxy: BehaviourLine | None = None  # vs our proxy student, references: students
    # SmolLM2's predictability of the answers, against the reference students' (see the module)
    behaviour_predict: BehaviourLine | None = None
    # the distiller's canaries this student reproduced (alias), and per probe form (PROBE_FORMS)
    # how many of the distiller's canaries and of the decoys each form's answer reproduced
    canary_hit_aliases: tuple[str, ...] = ()
    hits_by_probe: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def behaviour_log10_p(self) -> float:
        return self.behaviour.result.log10_p_value if self.behaviour is not None else 0.0

    @property
    def behaviour_proxy_log10_p(self) -> float:
        return self.behaviour_proxy.result.log10_p_value if self.behaviour_proxy is not None else 0.0

    @property
    def behaviour_predict_log10_p(self) -> float:
        return self.behaviour_predict.result.log10_p_value if self.behaviour_predict is not None else 0.0

    @property
    def flagged(self) -> bool:
        """The combined audit concludes descent at the lab's alpha."""
        return self.combined.conclusion


@dataclass(frozen=True)
class FingerprintLabResult:
    """Everything the fingerprint lab measured."""

    config: FingerprintLabConfig
    key_id: str
    scheme: str
    distiller: str
    n_params: int
    n_trained_params: int
    vocab_size: int
    harvest_answers: int
    harvest_tokens: int
    harvest_seconds: float
    probe_prompts: int
    canary_questions: int
    canary_exposures: dict[str, int]         # the distiller's alias -> served answers carrying it
    suspects: tuple[SuspectResult, ...]
    auroc: dict[str, float]
    auroc_by_probes: dict[int, float]
    auroc_by_probes_proxy: dict[int, float]
    auroc_by_probes_predict: dict[int, float]
    quality: QualityCost
    seconds: float

    def by_kind(self, kind: str) -> list[SuspectResult]:
        return [s for s in self.suspects if s.kind == kind]


def auroc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(score of a positive > score of a negative), ties counted one half (Mann-Whitney).

    Raises:
        InputError: either list is empty.
    """
    if not positives or not negatives:
        raise InputError("auroc needs at least one positive and one negative score.")
    pos, neg = np.asarray(positives, dtype=float)[:, None], np.asarray(negatives, dtype=float)[None, :]
    return float(((pos > neg) + 0.5 * (pos == neg)).mean())


def control_slices(tokenizer: Any, n_slices: int, n_tokens: int, max_new_tokens: int,
                    skip: set[str]) -> list[list[np.ndarray]]:
    """Disjoint slices of ShareGPT (first prompt, ChatGPT answer cut to ``max_new_tokens``
    tokens) pairs, each about ``n_tokens`` long: the independent students' training data, shaped
    like a harvest of another model."""
    from distillguard.data.corpora import iter_sharegpt

    slices: list[list[np.ndarray]] = [[]]
    total = 0
    for conv in iter_sharegpt():
        pair = next(conv.pairs(), None)
        if pair is None or pair[0] in skip or len(pair[0]) > 600 or not pair[1].strip():
            continue
        head = chat_prompt_ids(tokenizer, [pair[0]])[0]
        seq = np.asarray(head + token_ids(tokenizer, pair[1])[:max_new_tokens], dtype=np.int64)
        slices[-1].append(seq)
        total += seq.size
        if total >= n_tokens:
            if len(slices) == n_slices:
                return slices
            slices.append([])
            total = 0
    raise InputError(f"ShareGPT holds too few conversations for {n_slices} slices of {n_tokens} tokens.")


@dataclass
class _Answers:
    """A student's answers to both probe sets (kept; the student itself is dropped)."""

    name: str
    kind: str
    student: Student
    train_tokens: int
    probe_ids: list[np.ndarray]
    probe_texts: list[str]
    canary_texts: dict[str, str]          # alias -> its probes' answers, joined
    canary_said: dict[str, str]           # canary probe question -> answer (each asked once)
    style_texts: list[str]
    probe_nll: list[float]                # SmolLM2's mean token NLL of each probe answer (NaN: empty)


def run_fingerprint_lab(
    generator: Any,
    scheme: WatermarkScheme,
    key: SecretKey,
    cache_dir: Path,
    config: FingerprintLabConfig | None = None,
    *,
    log: Callable[[str], None] = print,
) -> FingerprintLabResult:
    """Run the whole fingerprint lab (SmolLM2 passes are cached under ``cache_dir``).

    Args:
        generator: a :class:`distillguard.model.Generator` (SmolLM2).
        scheme: our watermark, applied to everything SmolLM2 serves.
        key: the gateway key the canaries derive from.

    Raises:
        DependencyError: torch/transformers or the corpora are not installed.
        InputError: the corpora are too small for the configured sizes.
    """
    cfg = config or FingerprintLabConfig()
    t_start = time.perf_counter()
    hv = collect_harvests(generator, scheme, key, cache_dir, cfg, log=log)
    tok = generator.tokenizer
    distilled = [np.asarray(list(r.prompt_ids) + token_ids(tok, s), dtype=np.int64)
                 for r, s in zip(hv.records, hv.served, strict=True)]
    paraphrased = [np.asarray(list(r.prompt_ids) + token_ids(tok, p), dtype=np.int64)
                   for r, p in zip(hv.records, hv.paraphrased, strict=True)] if cfg.paraphrase else []
    proxy_seqs = [np.asarray(list(r.prompt_ids) + list(r.token_ids), dtype=np.int64) for r in hv.proxy]
    n_tokens = int(sum(s.size for s in distilled))
    skip = set(hv.probes) | set(hv.style_probes) | {r.prompt for r in hv.records}
    n_indep = cfg.n_controls + cfg.n_references
    slices = control_slices(tok, n_indep + 1, n_tokens, cfg.max_new_tokens, skip)
    vocab = student_vocab(cfg.student,
                          [s for part in (distilled, paraphrased, proxy_seqs, *slices) for s in part])
    log(f"harvest: {len(hv.records)} answers, {n_tokens} tokens with prompts; vocabulary {vocab.size} ids")
    probe_ids = chat_prompt_ids(tok, hv.probes)
    questions = canary_prompts(hv.registry)
    question_ids = chat_prompt_ids(tok, questions)
    style_ids = chat_prompt_ids(tok, hv.style_probes)

    def our_nll(texts: list[str]) -> list[float]:
        return answer_mean_nll(generator.model, tok, hv.probes, texts, max_tokens=cfg.max_new_tokens)

    def answers(name: str, kind: str, student: Student, train_tokens: int) -> _Answers:
        ids = student.answer(probe_ids, max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                             seed=cfg.seed)
        canary = student.answer(question_ids, max_new_tokens=2 * cfg.max_new_tokens,
                                temperature=cfg.temperature, seed=cfg.seed)
        said = {q: tok.decode(a.tolist(), skip_special_tokens=True) for q, a in zip(questions, canary,
                                                                                     strict=True)}
        more = student.answer(style_ids, max_new_tokens=cfg.style_tokens, temperature=cfg.temperature,
                              seed=cfg.seed) if style_ids else []
        log(f"{name}: trained {student.seconds:.0f}s, loss {student.final_loss:.2f}")
        texts = [tok.decode(a.tolist(), skip_special_tokens=True) for a in ids]
        return _Answers(name, kind, student, train_tokens, ids, texts,
                        hv.registry.answers_by_alias(said), said,
                        [tok.decode(a.tolist(), skip_special_tokens=True) for a in more], our_nll(texts))

    sc = cfg.student
    runs: list[_Answers] = []
    for k in range(cfg.n_distilled):
        st = train_student(distilled, vocab, replace(sc, seed=cfg.seed + k))
        runs.append(answers(f"distilled-s{k}", "distilled", st, n_tokens))
    for i in range(n_indep):
        kind = "control" if i < cfg.n_controls else "reference"
        j = i if kind == "control" else i - cfg.n_controls
        st = train_student(slices[i], vocab, replace(sc, seed=cfg.seed + 100 + i))
        runs.append(answers(f"{kind}-{j}", kind, st, int(sum(s.size for s in slices[i]))))
    if cfg.paraphrase:
        st = train_student(paraphrased, vocab, replace(sc, seed=cfg.seed))
        runs.append(answers("paraphrased", "paraphrased", st,
                            int(sum(s.size for s in paraphrased))))
    proxy = None
    if proxy_seqs:
        st = train_student(proxy_seqs, vocab, replace(sc, seed=cfg.seed + 200))
        proxy = answers("proxy", "proxy", st, int(sum(s.size for s in proxy_seqs)))
    if cfg.scrub_steps:
        # continues distilled-s0 in place: every audit of distilled-s0 is already collected
        st = train_student(slices[-1], vocab, replace(sc, steps=cfg.scrub_steps, seed=cfg.seed + 1),
                           init=runs[0].student)
        runs.append(answers("scrubbed", "scrubbed", st, n_tokens + int(sum(s.size for s in slices[-1]))))
    return _audit_all(cfg, hv, scheme, key, runs, proxy, generator, cache_dir, t_start, log)


def _suspect(cfg: FingerprintLabConfig, hv: LabHarvests, scheme: WatermarkScheme, run: _Answers,
             refs: dict[str, list[str]], ref_nll: dict[str, list[float]], proxy: _Answers | None,
             n_probes: int) -> SuspectResult:
    from distillguard.provenance.radioactivity import radioactivity_test

    ln10 = math.log(10)
    can = canary_line(hv.registry, run.canary_texts, alpha=cfg.alpha)
    # like `distillguard audit`: the style line reads every answer the suspect gave (each once)
    sty = style_line(hv.registry, [*run.probe_texts[:n_probes], *run.canary_said.values(), *run.style_texts],
                     alpha=cfg.alpha)
    beh = None if run.kind == "reference" else behaviour_line(
        list(hv.probes[:n_probes]), run.probe_texts[:n_probes], list(hv.ours[:n_probes]),
        {k: v[:n_probes] for k, v in refs.items()}, alpha=cfg.alpha)
    students = {k: v[:n_probes] for k, v in refs.items() if k != "sharegpt"}
    beh_proxy = None if run.kind == "reference" or proxy is None or not students else behaviour_line(
        list(hv.probes[:n_probes]), run.probe_texts[:n_probes], proxy.probe_texts[:n_probes], students,
        alpha=cfg.alpha)
    # the reference students only: ChatGPT's answers are not of a student's kind (see predictability_line)
    beh_predict = None if run.kind == "reference" else predictability_line(
        list(hv.probes[:n_probes]), run.probe_nll[:n_probes], {k: v[:n_probes] for k, v in ref_nll.items()},
        alpha=cfg.alpha)
    wm = radioactivity_test(scheme, run.probe_ids[:n_probes], alpha=cfg.alpha, curve_points=0)
    lines = [Evidence("canaries", min(0.0, can.result.log10_p_value * ln10)),
             Evidence("style canaries", min(0.0, sty.result.log10_p_value * ln10)),
             Evidence("watermark", min(0.0, wm.log10_p_value * ln10))]
    for name, line in (("behaviour", beh), ("behaviour (proxy)", beh_proxy),
                       ("behaviour (predictability)", beh_predict)):
        if line is not None:
            lines.append(Evidence(name, min(0.0, line.result.log10_p_value * ln10)))
    mine = hv.registry.for_account(cfg.distiller_id)
    said = run.canary_texts
    hit = tuple(c.alias for c in mine if alias_reproduced(said[c.alias], c.alias))
    example = said[hit[0] if hit else mine[0].alias]  # a reproduced canary when there is one
    st = run.student
    return SuspectResult(
        name=run.name, kind=run.kind, train_tokens=run.train_tokens,
        final_loss=st.final_loss, train_seconds=st.seconds, canary=can, style=sty,
        behaviour=beh,
        watermark_log10_p=wm.log10_p_value, combined=combine_evidence(lines, alpha=cfg.alpha),
        canary_answer_example=example, behaviour_proxy=beh_proxy, behaviour_predict=beh_predict,
        canary_hit_aliases=hit,
        hits_by_probe=_hits_by_probe(hv.registry, run.canary_said, cfg.distiller_id),
    )


def _hits_by_probe(registry: CanarySet, said: dict[str, str], account: str) -> dict[str, tuple[int, int]]:
    """Per probe form: (the account's canaries, decoys) whose alias that form's answer names."""
    out = {}
    for i, form in enumerate(PROBE_FORMS):
        counts = [0, 0]
        for c in registry.canaries:
            if c.label != account and not c.is_decoy:
                continue
            answer = said.get(c.probes()[i])
            if answer is not None and alias_reproduced(answer, c.alias):
                counts[c.is_decoy] += 1
        out[form] = (counts[0], counts[1])
    return out


def _audit_all(cfg: FingerprintLabConfig, hv: LabHarvests, scheme: WatermarkScheme, key: SecretKey,
               runs: list[_Answers], proxy: _Answers | None, generator: Any, cache_dir: Path,
               t_start: float, log: Callable[[str], None]) -> FingerprintLabResult:
    refs = {"sharegpt": list(hv.chatgpt)} | {r.name: r.probe_texts for r in runs if r.kind == "reference"}
    ref_nll = {r.name: r.probe_nll for r in runs if r.kind == "reference"}
    suspects = tuple(_suspect(cfg, hv, scheme, r, refs, ref_nll, proxy, cfg.n_probes) for r in runs)
    for s in suspects:
        c = s.canary.result
        y = s.style.result
        log(f"{s.name}: canaries log10 p {c.log10_p_value:.1f} -> {c.traced_account}, "
            f"style log10 p {y.log10_p_value:.1f} ({y.families_used} families) -> {y.traced_account}, "
            f"behaviour log10 p {s.behaviour_log10_p:.1f} (proxy {s.behaviour_proxy_log10_p:.1f}, "
            f"predictability {s.behaviour_predict_log10_p:.1f}), "
            f"watermark log10 p {s.watermark_log10_p:.1f}")

    def area(score: Callable[[SuspectResult], float], pool: Sequence[SuspectResult]) -> float:
        return auroc([score(s) for s in pool if s.kind == "distilled"],
                     [score(s) for s in pool if s.kind == "control"])

    scores: dict[str, Callable[[SuspectResult], float]] = {
        "behaviour": lambda s: -s.behaviour_log10_p,
        "behaviour (proxy)": lambda s: -s.behaviour_proxy_log10_p,
        "behaviour (predictability)": lambda s: -s.behaviour_predict_log10_p,
        "canaries": lambda s: -s.canary.result.log10_p_value,
        "style canaries": lambda s: -s.style.result.log10_p_value,
        "watermark": lambda s: -s.watermark_log10_p,
        "combined": lambda s: -s.combined.log10_p_value,
    }
    by_probes, by_probes_proxy, by_probes_predict = {}, {}, {}
    for m in sorted({m for m in (10, 25, 50) if m < cfg.n_probes} | {cfg.n_probes}):
        pool = [_suspect(cfg, hv, scheme, r, refs, ref_nll, proxy, m) for r in runs
                if r.kind in ("distilled", "control")]
        by_probes[m] = area(scores["behaviour"], pool)
        by_probes_proxy[m] = area(scores["behaviour (proxy)"], pool)
        by_probes_predict[m] = area(scores["behaviour (predictability)"], pool)
    quality = quality_cost(generator, hv, cfg, _canary_service(key, cache_dir, cfg))
    return FingerprintLabResult(
        config=cfg, key_id=hv.registry.key_id, scheme=scheme.name, distiller=cfg.distiller_id,
        n_params=runs[0].student.n_params, n_trained_params=runs[0].student.n_trained_params,
        vocab_size=runs[0].student.vocab.size, harvest_answers=len(hv.records),
        harvest_tokens=int(sum(len(r.prompt_ids) + len(r.token_ids) for r in hv.records)),
        harvest_seconds=hv.seconds, probe_prompts=cfg.n_probes,
        canary_questions=len(canary_prompts(hv.registry)),
        canary_exposures=canary_exposures(hv.registry, cfg.distiller_id, hv.served), suspects=suspects,
        auroc={k: area(f, suspects) for k, f in scores.items()}, auroc_by_probes=by_probes,
        auroc_by_probes_proxy=by_probes_proxy, auroc_by_probes_predict=by_probes_predict,
        quality=quality, seconds=time.perf_counter() - t_start,
    )
