"""The distillation experiment: harvests → students → audits → one results table.

Students, all with the same architecture and training budget (:class:`StudentConfig`):

- ``distilled`` — trained on the watermarked harvest;
- ``clean-control`` — the same prompts answered with the watermark off (if that harvest is run);
- ``human-control`` — ShareGPT's human/ChatGPT conversations (text we never generated);
- ``contaminated-X%`` — a fixed-size corpus of human text in which X% of the tokens are replaced
  by watermarked harvest;
- ``scrubbed-finetuned`` — the distilled student, further fine-tuned on human text.

Each student answers held-out ShareGPT prompts (black-box audit: p-value vs suspect tokens) and
is read on watermarked harvest texts (open-model audit). Null controls under never-used keys
are run on the distilled student's answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.errors import ConfigError
from distillguard.lab.harvest import HarvestRecord, harvest, sharegpt_prompts
from distillguard.lab.student import CompactVocab, Student, StudentConfig, train_student
from distillguard.provenance.controls import ControlsResult, null_controls
from distillguard.provenance.radioactivity import RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingResult, reading_test
from distillguard.watermark.base import WatermarkScheme

__all__ = ["LabConfig", "LabResult", "StudentResult", "run_lab"]


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
    n_controls: int = 100
    students: tuple[str, ...] | None = None  # train only these (None = all)
    seed: int = 0


@dataclass(frozen=True)
class StudentResult:
    """One student's audits."""

    name: str
    train_tokens: int
    watermarked_fraction: float
    final_loss: float
    train_seconds: float
    radioactivity: RadioactivityResult
    reading: ReadingResult


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


def _human_corpus(tokenizer: Any, n_tokens: int, skip_prompts: set[str]) -> list[np.ndarray]:
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


def _pairs(records: list[HarvestRecord]) -> list[np.ndarray]:
    return [np.asarray(r.prompt_ids + r.token_ids, dtype=np.int64) for r in records]


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
    harvest_seconds = time.perf_counter() - t0
    tok = generator.tokenizer
    human = _human_corpus(
        tok, cfg.human_tokens + cfg.max_new_tokens * cfg.n_harvest, set(prompts) | set(held_out)
    )
    wm_seqs, clean_seqs = _pairs(wm), _pairs(clean)
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
    vocab = CompactVocab.build([s for seqs, _ in corpora.values() for s in seqs])
    all_students = [*corpora, "scrubbed-finetuned"]
    if cfg.students is not None:
        corpora = {k: v for k, v in corpora.items() if k in cfg.students}
    log(f"compact vocabulary: {vocab.size} ids")

    held_ids = []
    for p in held_out:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True
        )
        held_ids.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    reading_texts = [(r.prompt_ids, r.token_ids) for r in wm[: cfg.reading_texts]]

    results: list[StudentResult] = []
    answers: list[np.ndarray] = []
    distilled: Student | None = None
    distilled_answers: list[np.ndarray] = []
    n_params = 0

    def audit(name: str, student: Student, n_train: int, frac: float) -> list[np.ndarray]:
        answers = student.answer(held_ids, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        radio = radioactivity_test(scheme, answers, curve_points=12)
        read = reading_test(scheme, student.reading_items(reading_texts), statistic="mass")
        results.append(
            StudentResult(
                name, n_train, frac, float(np.mean(student.losses[-10:])), student.seconds, radio, read
            )
        )
        log(
            f"{name}: black-box log10 p {radio.log10_p_value:.1f} ({radio.n_scored} tuples), "
            f"reading log10 p {read.log10_p_value:.1f}; loss {results[-1].final_loss:.2f}, "
            f"{student.seconds:.0f}s"
        )
        return answers

    for name, (seqs, frac) in corpora.items():
        student = train_student(seqs, vocab, cfg.student)
        n_params = student.n_params
        answers = audit(name, student, int(sum(s.size for s in seqs)), frac)
        if name == "distilled":
            distilled, distilled_answers = student, answers
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
    control_answers = distilled_answers or (answers if results else [])
    if not control_answers:
        raise ConfigError(f"No student to train: {cfg.students} names none of {all_students}.")
    controls = null_controls(
        lambda k: type(scheme)(scheme.config, k),  # type: ignore[attr-defined, call-arg]
        lambda s: radioactivity_test(s, control_answers, curve_points=0).log10_p_value,
        np.random.default_rng(cfg.seed),
        n_keys=cfg.n_controls,
    )
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
    )
