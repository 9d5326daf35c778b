"""The distillation experiment: harvests → students → audits → one results table.

Students, all with the same architecture and training budget (:class:`StudentConfig`):

- ``distilled`` — trained on the watermarked harvest;
- ``clean-control`` — the same prompts answered with the watermark off (if that harvest is run);
- ``human-control`` — ShareGPT's human/ChatGPT conversations (text we never generated);
- ``contaminated-X%`` — a fixed-size corpus of human text in which X% of the tokens are replaced
  by watermarked harvest;
- ``scrubbed-finetuned`` — the distilled student, further fine-tuned on human text;
- ``scrubbed-paraphrased`` — trained on the harvest after SmolLM2 (watermark off) paraphrased
  every answer, the attacker's cheapest scrub;
- ``scrubbed-averaged`` — every weight the mean of the distilled and the clean-control
  student's (both start from the same initialisation): a model soup that halves what was
  learned from the harvest.

Each student is audited black-box on two query sets, and read on watermarked harvest texts
(open-model audit):

- ``held-out`` — ShareGPT prompts the attacker never sent;
- ``logged`` — the prompts the extraction account did send, as the provider's request log holds
  them (a seeded shuffle of the harvest prompts: the log does not say which of them a
  contaminator kept). A student trained on our answers to them tends to reproduce those answers,
  so they maximise the signal. The test stays exact: prompts are chosen without our key, and a
  model that never trained on our watermarked text answers them independently of the key — the
  ``clean-control`` student, trained on our *unwatermarked* answers to the very same prompts, is
  the control that shows it.

Null controls under never-used keys are run on the distilled student's answers to each set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.errors import ConfigError
from distillguard.lab.harvest import (
    PARAPHRASE_ASK,
    HarvestRecord,
    chat_prompt_ids,
    harvest,
    sharegpt_prompts,
)
from distillguard.lab.student import (
    Student,
    StudentConfig,
    average_students,
    student_vocab,
    train_student,
)
from distillguard.provenance.controls import ControlsResult, null_controls
from distillguard.provenance.radioactivity import RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingResult, reading_test
from distillguard.provenance.suspects import SUSPECT_TEMPERATURE
from distillguard.watermark._common import check_real
from distillguard.watermark.base import WatermarkScheme

__all__ = [
    "LabConfig",
    "LabResult",
    "StudentResult",
    "SweepPoint",
    "answer_controls",
    "human_corpus",
    "logged_prompt_order",
    "run_lab",
    "training_pairs",
]


@dataclass(frozen=True)
class LabConfig:
    """Sizes of the lab run (defaults: minutes on 2 CPU cores after the harvests are cached)."""

    n_harvest: int = 240
    n_queries: int = 120
    max_new_tokens: int = 96
    harvest_temperature: float = 0.8
    student: StudentConfig = field(default_factory=StudentConfig)
    contamination: tuple[float, ...] = (0.10, 0.05, 0.01)
    human_tokens: int = 100_000
    scrub_steps: int = 100
    reading_texts: int = 80
    clean_harvest: bool = True
    paraphrase: bool = True  # one more SmolLM2 pass: paraphrase every harvested answer
    n_controls: int = 100
    students: tuple[str, ...] | None = None  # train only these (None = all)
    logged_queries: bool = True  # also audit on the logged prompts (min(n_queries, n_harvest) of them)
    # The auditor chooses how the suspect samples (an API takes a temperature). The main audit
    # uses ``suspect_temperature`` (the audit's default; sections measured before it existed say
    # T = 0.8); each of ``temperature_sweep`` is audited as well, on the same prompts, with its
    # own null controls (0 = greedy).
    suspect_temperature: float = SUSPECT_TEMPERATURE
    temperature_sweep: tuple[float, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        # [0, 2], 0 = greedy
        temps = [("suspect_temperature", self.suspect_temperature)]
        temps += [("temperature_sweep", t) for t in self.temperature_sweep]
        for name, t in temps:
            check_real("LabConfig", name, t, 0, 2, open_lo=False, open_hi=False)


@dataclass(frozen=True)
class SweepPoint:
    """One student's black-box audits with its answers sampled at ``temperature``."""

    temperature: float
    radioactivity: RadioactivityResult
    logged: RadioactivityResult | None = None


@dataclass(frozen=True)
class StudentResult:
    """One student's audits: black-box on held-out prompts (``radioactivity``) and on the logged
    prompts (``logged``, None when ``LabConfig.logged_queries`` is off), open-model ``reading``."""

    name: str
    train_tokens: int
    watermarked_fraction: float
    final_loss: float
    train_seconds: float
    radioactivity: RadioactivityResult
    reading: ReadingResult
    logged: RadioactivityResult | None = None
    sweep: tuple[SweepPoint, ...] = ()


@dataclass(frozen=True)
class LabResult:
    """Everything the lab measured."""

    config: LabConfig
    scheme: str
    scheme_config: dict[str, Any]
    key_id: str
    n_params: int
    harvest_tokens: int
    harvest_seconds: float
    students: tuple[StudentResult, ...]
    controls: ControlsResult
    seconds: float
    controls_logged: ControlsResult | None = None
    # temperature -> null controls on the distilled student's held-out answers at that temperature
    sweep_controls: dict[float, ControlsResult] = field(default_factory=dict)
    n_trained_params: int = 0  # fewer than n_params for a partly frozen pretrained base
    vocab_size: int = 0


def human_corpus(tokenizer: Any, n_tokens: int, skip_prompts: set[str]) -> list[np.ndarray]:
    """ShareGPT (human prompt, ChatGPT answer) pairs as chat-templated ids, about ``n_tokens``."""
    from distillguard.data.corpora import iter_sharegpt

    out: list[np.ndarray] = []
    total = 0
    for conv in iter_sharegpt():
        for prompt, answer in conv.pairs():
            if prompt in skip_prompts or not answer.strip() or len(answer) > 4000:
                continue
            chat = [{"role": "user", "content": prompt[:1500]}, {"role": "assistant", "content": answer}]
            ids = tokenizer.apply_chat_template(chat, tokenize=True)
            if hasattr(ids, "keys"):
                ids = ids["input_ids"]
            arr = np.asarray(ids, dtype=np.int64)
            out.append(arr)
            total += arr.size
            if total >= n_tokens:
                return out
    return out


def training_pairs(records: list[HarvestRecord]) -> list[np.ndarray]:
    """A harvest as student training sequences: chat-templated prompt ids + answer ids each."""
    return [np.asarray(r.prompt_ids + r.token_ids, dtype=np.int64) for r in records]


CURVE_MARKS = (10, 30, 100, 300, 1000)  # query counts the reported curves always include


def answer_controls(
    scheme: WatermarkScheme, answers: list[np.ndarray], *, seed: int, n_keys: int
) -> ControlsResult:
    """The black-box audit of ``answers`` rerun under ``n_keys`` never-used keys (same scheme
    config): their p-values must look uniform."""
    return null_controls(
        lambda k: type(scheme)(scheme.config, k),  # type: ignore[attr-defined, call-arg]
        lambda s: radioactivity_test(s, answers, curve_points=0).log10_p_value,
        np.random.default_rng(seed),
        n_keys=n_keys,
    )


def logged_prompt_order(n_logged: int, n_queries: int, seed: int) -> list[int]:
    """Indices of the logged (harvest) prompts sent to the suspect, in order: a seeded shuffle.

    The order is drawn without looking at the key or at which prompts a contaminator used, so a
    prefix of it is an honest sample of the account's log.

    >>> sorted(logged_prompt_order(5, 5, 0)) == list(range(5))
    True
    """
    order = np.random.default_rng([seed, 0x10667ED]).permutation(n_logged)
    return [int(i) for i in order[:n_queries]]


def _wanted(students: tuple[str, ...] | None) -> set[str] | None:
    """The students to train: those asked for and those the scrubs are made from (None = all)."""
    if students is None:
        return None
    wanted = set(students)
    if wanted & {"scrubbed-finetuned", "scrubbed-averaged"}:
        wanted.add("distilled")
    if "scrubbed-averaged" in wanted:
        wanted.add("clean-control")
    return wanted


def _take_tokens(seqs: list[np.ndarray], n_tokens: int) -> list[np.ndarray]:
    out, total = [], 0
    for s in seqs:
        if total >= n_tokens:
            break
        out.append(s[: max(1, n_tokens - total)])
        total += out[-1].size
    return out


def run_lab(
    generator: Any,
    scheme: WatermarkScheme,
    cache_dir: Path,
    config: LabConfig | None = None,
    *,
    log: Callable[[str], None] = print,
) -> LabResult:
    """Run the whole lab with ``generator`` (SmolLM2, any scheme) and our ``scheme``.

    Raises:
        DependencyError: torch/transformers or the corpora are not installed.
    """
    cfg = config or LabConfig()
    t_start = time.perf_counter()
    wm_gen = generator.with_scheme(scheme)
    prompts = sharegpt_prompts(cfg.n_harvest)
    held_out = sharegpt_prompts(cfg.n_queries, offset=cfg.n_harvest)

    def progress(tag: str) -> Callable[[int, int], None]:
        return lambda d, n: log(f"harvest {tag}: {d}/{n}")

    t0 = time.perf_counter()
    wm = harvest(
        wm_gen,
        prompts,
        cache_dir=cache_dir,
        tag="wm",
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.harvest_temperature,
        seed=cfg.seed,
        progress=progress("wm"),
    )
    clean = (
        harvest(
            generator.with_scheme(None),
            prompts,
            cache_dir=cache_dir,
            tag="clean",
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.harvest_temperature,
            seed=cfg.seed,
            progress=progress("clean"),
        )
        if cfg.clean_harvest
        else []
    )
    wanted = _wanted(cfg.students)
    para = (
        harvest(
            generator.with_scheme(None),
            [PARAPHRASE_ASK.format(text=r.text) for r in wm],
            cache_dir=cache_dir,
            tag="paraphrase",
            max_new_tokens=cfg.max_new_tokens + 16,
            temperature=0.7,
            seed=cfg.seed,
            progress=progress("paraphrase"),
        )
        if cfg.paraphrase and (wanted is None or "scrubbed-paraphrased" in wanted)
        else []
    )
    harvest_seconds = time.perf_counter() - t0
    tok = generator.tokenizer
    human = human_corpus(
        tok, cfg.human_tokens + cfg.max_new_tokens * cfg.n_harvest, set(prompts) | set(held_out)
    )
    wm_seqs, clean_seqs = training_pairs(wm), training_pairs(clean)
    wm_tokens = int(sum(s.size for s in wm_seqs))
    log(
        f"harvest: {len(wm)} watermarked answers, {wm_tokens} tokens (with prompts); human {len(human)} texts"
    )

    corpora: dict[str, tuple[list[np.ndarray], float]] = {"distilled": (wm_seqs, 1.0)}
    if clean_seqs:
        corpora["clean-control"] = (clean_seqs, 0.0)
    corpora["human-control"] = (_take_tokens(human, wm_tokens), 0.0)
    for f in cfg.contamination:
        n_wm = round(f * cfg.human_tokens)
        mix = _take_tokens(wm_seqs, n_wm) + _take_tokens(human[::-1], cfg.human_tokens - n_wm)
        rng = np.random.default_rng(cfg.seed)
        order = rng.permutation(len(mix))
        corpora[f"contaminated-{f:.0%}"] = ([mix[i] for i in order], f)
    # the vocabulary covers every corpus, so a partial run trains the same students as a full one
    vocab = student_vocab(cfg.student, [s for seqs, _ in corpora.values() for s in seqs])
    if para:
        # Not in the vocabulary (it would change every other student when the pass is skipped):
        # a paraphrase uses SmolLM2's words, and the few ids outside the vocabulary become <unk>.
        corpora["scrubbed-paraphrased"] = (
            [np.asarray(w.prompt_ids + p.token_ids, dtype=np.int64) for w, p in zip(wm, para, strict=True)],
            1.0,
        )
    all_students = [*corpora, "scrubbed-finetuned", "scrubbed-averaged"]
    if wanted is not None:
        corpora = {k: v for k, v in corpora.items() if k in wanted}
    log(f"student vocabulary: {vocab.size} ids")

    held_ids = chat_prompt_ids(tok, held_out)
    reading_texts = [(r.prompt_ids, r.token_ids) for r in wm[: cfg.reading_texts]]
    logged_ids = (
        [list(wm[i].prompt_ids) for i in logged_prompt_order(len(wm), cfg.n_queries, cfg.seed)]
        if cfg.logged_queries
        else []
    )

    results: list[StudentResult] = []
    answers: dict[str, list[np.ndarray]] = {}
    distilled_answers: dict[str, list[np.ndarray]] = {}
    sweep_answers: dict[float, list[np.ndarray]] = {}
    distilled: Student | None = None
    trained: dict[str, Student] = {}
    n_params = n_trained = 0

    sets = {"held-out": held_ids, **({"logged": logged_ids} if logged_ids else {})}

    # The suspect's sampling seed moves with the student's seed, so a lab repeated over student
    # seeds varies both what was learned and what is sampled (seed 0 keeps earlier runs' draws).
    answer_seed = cfg.seed + cfg.student.seed

    def answer_all(student: Student, temperature: float) -> dict[str, list[np.ndarray]]:
        return {
            k: student.answer(
                ids, max_new_tokens=cfg.max_new_tokens, temperature=temperature, seed=answer_seed
            )
            for k, ids in sets.items()
        }

    def radio_all(out: dict[str, list[np.ndarray]]) -> dict[str, RadioactivityResult]:
        return {
            k: radioactivity_test(scheme, a, curve_points=12, curve_at=CURVE_MARKS) for k, a in out.items()
        }

    def audit(name: str, student: Student, n_train: int, frac: float) -> dict[str, list[np.ndarray]]:
        out = answer_all(student, cfg.suspect_temperature)
        radio = radio_all(out)
        sweep = []
        for t in cfg.temperature_sweep:
            t_out = answer_all(student, t)
            t_radio = radio_all(t_out)
            sweep.append(SweepPoint(t, t_radio["held-out"], t_radio.get("logged")))
            if name == "distilled":
                sweep_answers[t] = t_out["held-out"]
            log(f"{name} at T={t:g}: " + ", ".join(f"{k} {r.log10_p_value:.1f}" for k, r in t_radio.items()))
        read = reading_test(scheme, student.reading_items(reading_texts), statistic="mass")
        loss = student.final_loss  # nan: not trained
        results.append(
            StudentResult(
                name, n_train, frac, loss, student.seconds, radio["held-out"], read, radio.get("logged"),
                tuple(sweep),
            )
        )
        log(
            f"{name}: black-box log10 p "
            + ", ".join(f"{k} {r.log10_p_value:.1f} ({r.n_scored} tuples)" for k, r in radio.items())
            + f"; reading log10 p {read.log10_p_value:.1f}; loss {loss:.2f}, {student.seconds:.0f}s"
        )
        return out

    for name, (seqs, frac) in corpora.items():
        student = train_student(seqs, vocab, cfg.student)
        n_params, n_trained = student.n_params, student.n_trained_params
        trained[name] = student
        answers = audit(name, student, int(sum(s.size for s in seqs)), frac)
        if name == "distilled":
            distilled, distilled_answers = student, answers
    if distilled is not None and "clean-control" in trained and (
        cfg.students is None or "scrubbed-averaged" in cfg.students
    ):
        # before the fine-tuning scrub, which continues training the distilled student in place
        audit("scrubbed-averaged", average_students(distilled, trained["clean-control"]), wm_tokens, 0.5)
    if (
        distilled is not None
        and cfg.scrub_steps
        and (cfg.students is None or "scrubbed-finetuned" in cfg.students)
    ):
        from dataclasses import replace

        scrub_cfg = replace(cfg.student, steps=cfg.scrub_steps, seed=cfg.seed + 1)
        scrubbed = train_student(
            _take_tokens(human[::-1], cfg.human_tokens), vocab, scrub_cfg, init=distilled
        )
        audit("scrubbed-finetuned", scrubbed, wm_tokens, 1.0)
    control_answers = distilled_answers or answers
    if not control_answers:
        raise ConfigError(f"No student to train: {cfg.students} names none of {all_students}.")

    def controls_on(texts: list[np.ndarray]) -> ControlsResult:
        return answer_controls(scheme, texts, seed=cfg.seed, n_keys=cfg.n_controls)

    controls = controls_on(control_answers["held-out"])
    controls_logged = controls_on(control_answers["logged"]) if "logged" in control_answers else None
    from dataclasses import asdict

    return LabResult(
        config=cfg,
        scheme=scheme.name,
        scheme_config=asdict(scheme.config),  # type: ignore[attr-defined]
        key_id=scheme.keyring.primary.key_id,  # type: ignore[attr-defined]
        n_params=n_params,
        harvest_tokens=wm_tokens,
        harvest_seconds=harvest_seconds,
        students=tuple(results),
        controls=controls,
        seconds=time.perf_counter() - t_start,
        controls_logged=controls_logged,
        sweep_controls={t: controls_on(a) for t, a in sweep_answers.items()},
        n_trained_params=n_trained,
        vocab_size=vocab.size,
    )
