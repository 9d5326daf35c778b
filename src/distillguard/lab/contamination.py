"""Contamination at scale: students whose training text is only X% watermarked, X down to 1%.

:func:`~distillguard.lab.run.run_lab`'s contaminated students mix a few thousand watermarked
tokens into 100k tokens of human text, what two CPU cores train in minutes; such students have
not learned the watermarked part, whatever its share. Here the *whole* harvest is kept and human
text is added until the harvest's answers are the asked fraction of the training tokens (1% of a
180k-token harvest is an 18M-token corpus), which is how a contaminator's data looks: a real
instruction set with our answers mixed in.

The two halves run where their compute is. The data is prepared where the teacher runs, into a
:class:`ContaminationBundle` file (token ids only: no tokenizer, no teacher needed afterwards);
the students are trained and audited by :func:`run_contamination` on ``StudentConfig.device``
(a GPU trains the 18M-token student in minutes). The audits are the lab's: black-box on held-out
and on logged prompts, the reading test on harvest texts, null controls under never-used keys.

Fractions count *answer* tokens (what carries the watermark), not the prompts sent with them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np

from distillguard.errors import ConfigError, InputError
from distillguard.lab.run import CURVE_MARKS, answer_controls, logged_prompt_order
from distillguard.lab.student import (
    Student,
    StudentConfig,
    base_model_student,
    student_vocab,
    train_student,
)
from distillguard.provenance.controls import ControlsResult, null_controls
from distillguard.provenance.radioactivity import RadioactivityResult, radioactivity_test
from distillguard.provenance.reading import ReadingItem, ReadingResult, reading_test
from distillguard.provenance.suspects import SUSPECT_TEMPERATURE
from distillguard.watermark._common import check_real
from distillguard.watermark.base import WatermarkScheme

__all__ = [
    "ContaminationBundle",
    "ContaminationConfig",
    "ContaminationCorpus",
    "ContaminationResult",
    "ContaminationStudent",
    "contamination_corpus",
    "run_contamination",
]

_GROUPS = ("wm_prompts", "wm_answers", "human", "held_out")


@dataclass(frozen=True)
class ContaminationBundle:
    """Everything the students are trained and audited on, as SmolLM2 token ids.

    Attributes:
        wm_prompts, wm_answers: the harvest: chat-templated prompts and our watermarked answers
            (the logged queries are the prompts, the reading texts the pairs).
        human: chat-templated (prompt, answer) sequences of text we never generated.
        held_out: chat-templated prompts the attacker never sent.
        meta: how it was made (scheme name and config, key id, harvest settings).
    """

    wm_prompts: tuple[np.ndarray, ...]
    wm_answers: tuple[np.ndarray, ...]
    human: tuple[np.ndarray, ...]
    held_out: tuple[np.ndarray, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.wm_prompts) != len(self.wm_answers):
            raise InputError(
                f"A contamination bundle needs one prompt per watermarked answer; got "
                f"{len(self.wm_prompts)} prompts and {len(self.wm_answers)} answers."
            )
        for name in _GROUPS:
            if not getattr(self, name):
                raise InputError(f"A contamination bundle needs a non-empty {name!r} group.")

    @property
    def wm_tokens(self) -> int:
        """Watermarked answer tokens in the harvest."""
        return int(sum(a.size for a in self.wm_answers))

    @property
    def human_tokens(self) -> int:
        """Tokens of human text available."""
        return int(sum(h.size for h in self.human))

    def save(self, path: Path) -> Path:
        """Write the bundle as one compressed ``.npz`` (ids as uint16 when they fit, as SmolLM2's
        49,152 do, else uint32; lengths per group)."""
        arrays: dict[str, np.ndarray] = {}
        for name in _GROUPS:
            seqs = getattr(self, name)
            ids = np.concatenate(seqs)
            if ids.size and (ids.min() < 0 or ids.max() >= 2**32):
                raise InputError(f"Token ids of {name!r} must lie in [0, 2**32).")
            arrays[f"{name}_ids"] = ids.astype(np.uint16 if ids.size and ids.max() < 2**16 else np.uint32)
            arrays[f"{name}_len"] = np.array([s.size for s in seqs], dtype=np.int64)
        arrays["meta"] = np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:  # a file handle: np.savez would append ".npz" to the name
            np.savez_compressed(fh, **cast(dict[str, Any], arrays))  # numpy's stub types **kwds oddly
        return path

    @classmethod
    def load(cls, path: Path) -> ContaminationBundle:
        """Read a bundle written by :meth:`save`.

        Raises:
            InputError: the file is missing or not a bundle.
        """
        try:
            with np.load(Path(path)) as z:
                groups = {}
                for name in _GROUPS:
                    ids, lens = z[f"{name}_ids"].astype(np.int64), z[f"{name}_len"]
                    if int(lens.sum()) != ids.size or (lens < 0).any():
                        raise ValueError(f"{name}: lengths do not add up to the ids")
                    groups[name] = tuple(np.split(ids, np.cumsum(lens)[:-1]))
                meta = json.loads(z["meta"].tobytes().decode())
        except FileNotFoundError:
            raise InputError(f"No contamination bundle at {path}.") from None
        except (OSError, KeyError, ValueError) as exc:
            raise InputError(f"{path} is not a contamination bundle ({exc}).") from None
        return cls(meta=meta, **groups)


@dataclass(frozen=True)
class ContaminationConfig:
    """What to train and how to audit it.

    Attributes:
        fractions: watermarked shares of the training answer tokens, each in (0, 1). Students
            train in this order, after the distilled and the human-control one: put first what
            matters most when a time budget may cut the run.
        control_fraction: the human-control student trains on the very human text of this
            fraction's student, without the watermarked part (must be one of ``fractions``).
        epochs: passes over each student's corpus; ``min_steps`` floors the small corpora
            (the distilled student's harvest alone is a few hundred thousand tokens).
        student: architecture, batch and device (every student the same).
        n_queries: black-box queries per query set; ``reading_texts``: harvest texts read.
        max_train_tokens: caps each contaminated student's corpus (the harvest share is cut to
            keep the fraction); None: the whole harvest. For CPU-sized runs.
        vocab_min_count: the compact vocabulary keeps ids seen at least this often over all the
            corpora (rarer ones become UNK, which a student never emits): the output layer's
            width is most of a small student's cost on CPU. Unused by a pretrained base
            (``student.base``), which keeps the tokenizer's vocabulary.
        time_budget_s: a student that would not finish within this many seconds of the run's
            start is skipped (reported, not silently dropped): its time is predicted from the
            seconds per step and per audit of the students before it. None: no budget.
        students: train only these (names as in the results: "distilled", "human-control",
            "contaminated-5%"); None: all. Corpora and vocabulary are the full run's either way,
            so a student trained alone is the one a full run trains.
    """

    fractions: tuple[float, ...] = (0.10, 0.05, 0.01)
    control_fraction: float = 0.05
    epochs: float = 2.0
    min_steps: int = 400
    student: StudentConfig = field(default_factory=StudentConfig)
    n_queries: int = 1000
    max_new_tokens: int = 96
    suspect_temperature: float = SUSPECT_TEMPERATURE
    reading_texts: int = 300
    n_controls: int = 100
    answer_batch: int = 250
    max_train_tokens: int | None = None
    vocab_min_count: int = 1
    time_budget_s: float | None = None
    students: tuple[str, ...] | None = None
    reading_reference: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.fractions:
            raise ConfigError("ContaminationConfig needs at least one fraction.")
        for f in self.fractions:
            check_real("ContaminationConfig", "fractions", f, 0, 1)
        if self.control_fraction not in self.fractions:
            raise ConfigError(
                f"ContaminationConfig.control_fraction must be one of fractions {self.fractions}. "
                f"Got {self.control_fraction!r}."
            )
        check_real("ContaminationConfig", "epochs", self.epochs, 0, 1000, open_hi=False)
        check_real("ContaminationConfig", "suspect_temperature", self.suspect_temperature, 0, 2,
                   open_lo=False, open_hi=False)
        for name in ("min_steps", "n_queries", "max_new_tokens", "reading_texts", "n_controls",
                     "answer_batch", "vocab_min_count"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(
                    f"The {name!r} parameter of ContaminationConfig must be an int ≥ 1. Got {v!r}."
                )
        if self.max_train_tokens is not None and (
            isinstance(self.max_train_tokens, bool)
            or not isinstance(self.max_train_tokens, int)
            or self.max_train_tokens < 1
        ):
            raise ConfigError(
                "ContaminationConfig.max_train_tokens must be None or an int ≥ 1. "
                f"Got {self.max_train_tokens!r}."
            )
        if self.time_budget_s is not None:
            check_real("ContaminationConfig", "time_budget_s", self.time_budget_s, 0, math.inf)


@dataclass(frozen=True)
class ContaminationStudent:
    """One student: its corpus, training and audits."""

    name: str
    fraction: float  # watermarked answer tokens / all training tokens
    watermarked_tokens: int
    train_tokens: int
    steps: int
    final_loss: float
    train_seconds: float
    radioactivity: RadioactivityResult
    logged: RadioactivityResult
    reading: ReadingResult
    # the reading test on just the harvest texts in this student's corpus: what an auditor reads
    # when the contaminator used the whole of an account's log (the distilled student: all of
    # it; the human-control: the control fraction's texts, which it never saw); None: no texts
    reading_trained: ReadingResult | None = None
    # the contrast statistic against SmolLM2 as it ships (config.reading_reference), on the same
    # two text sets, and its null controls (never-used keys) on the second (else the first)
    contrast: ReadingResult | None = None
    contrast_trained: ReadingResult | None = None
    contrast_controls: ControlsResult | None = None


@dataclass(frozen=True)
class ContaminationResult:
    """The whole run: students in training order, null controls, what was skipped."""

    config: ContaminationConfig
    scheme: str
    key_id: str
    bundle: dict[str, Any]
    n_params: int
    n_trained_params: int
    vocab_size: int
    students: tuple[ContaminationStudent, ...]
    controls: ControlsResult | None
    controls_logged: ControlsResult | None
    skipped: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class ContaminationCorpus:
    """One fraction's training text.

    Attributes:
        wm_pairs: the harvest pairs it holds (prompt + watermarked answer each).
        human: the human sequences added.
        wm_tokens: watermarked answer tokens in it.
        harvest_indices: which harvest pairs ``wm_pairs`` are (bundle order), in corpus order.
    """

    wm_pairs: list[np.ndarray]
    human: list[np.ndarray]
    wm_tokens: int
    harvest_indices: list[int]


def contamination_corpus(
    bundle: ContaminationBundle, fraction: float, *, seed: int = 0, max_tokens: int | None = None
) -> ContaminationCorpus:
    """The ``fraction`` student's corpus.

    All of the harvest is used while there is human text enough and the corpus stays within
    ``max_tokens``; otherwise a random part of the harvest is kept so that the fraction still
    holds. Human text is taken in bundle order (so the control student, given the same fraction,
    gets the same text).

    >>> a = tuple(np.arange(5) for _ in range(4))
    >>> b = ContaminationBundle(a, a, tuple(np.arange(10) for _ in range(30)), a)
    >>> c = contamination_corpus(b, 0.10)
    >>> total = sum(s.size for s in c.wm_pairs) + sum(h.size for h in c.human)  # prompts count too
    >>> c.wm_tokens, total, c.wm_tokens / total, sorted(c.harvest_indices)
    (20, 200, 0.1, [0, 1, 2, 3])
    """
    check_real("contamination_corpus", "fraction", fraction, 0, 1, open_hi=False)
    pairs = [(p, a) for p, a in zip(bundle.wm_prompts, bundle.wm_answers, strict=True)]
    order = np.random.default_rng([seed, 0xC0_17A]).permutation(len(pairs))
    want_wm = bundle.wm_tokens if max_tokens is None else min(bundle.wm_tokens, int(fraction * max_tokens))
    # total tokens t with wm/t = f: human share (prompts included) = wm (1 - f) / f - wm prompts
    # (prompts in proportion to the share of the harvest kept)
    prompt_tokens = sum(p.size for p, _ in pairs) * want_wm / max(bundle.wm_tokens, 1)
    human_needed = want_wm * (1 - fraction) / fraction - prompt_tokens
    if human_needed > bundle.human_tokens:
        # not enough human text: scale the harvest down in proportion
        scale = bundle.human_tokens / max(human_needed, 1.0)
        want_wm = int(want_wm * scale)
    wm_pairs: list[np.ndarray] = []
    used: list[int] = []
    wm_tokens = 0
    for i in order:
        p, a = pairs[i]
        if wm_tokens + a.size > want_wm and wm_pairs:
            break
        wm_pairs.append(np.concatenate([p, a]))
        used.append(int(i))
        wm_tokens += a.size
    total_wanted = wm_tokens / fraction
    human: list[np.ndarray] = []
    have = sum(s.size for s in wm_pairs)
    for h in bundle.human:
        if have >= total_wanted:
            break
        human.append(h)
        have += h.size
    return ContaminationCorpus(wm_pairs, human, wm_tokens, used)


def _steps(cfg: ContaminationConfig, n_tokens: int) -> int:
    per_step = cfg.student.batch_size * cfg.student.seq_len
    return max(cfg.min_steps, math.ceil(cfg.epochs * n_tokens / per_step))


def _contrast_controls(
    scheme: WatermarkScheme,
    items: list[ReadingItem],
    reference: list[ReadingItem],
    *,
    n_keys: int,
    rng: np.random.Generator,
) -> ControlsResult:
    """The contrast reading test, same texts and predictions, under never-used keys."""
    return null_controls(
        lambda k: type(scheme)(scheme.config, k),  # type: ignore[attr-defined, call-arg]
        lambda s: reading_test(s, items, statistic="contrast", reference=reference).log10_p_value,
        rng,
        n_keys=n_keys,
    )


class _StudentReader:
    """One student's (or the reference model's) reading items and reading tests per list of
    harvest texts, each computed once (the corpus's own texts are often all of the texts read)."""

    def __init__(
        self,
        student: Student,
        texts: list[tuple[np.ndarray, np.ndarray]],
        scheme: WatermarkScheme,
        reference: Callable[[tuple[int, ...]], list[ReadingItem]] | None,
    ) -> None:
        self._student, self._texts, self._scheme, self._reference = student, texts, scheme, reference
        self._items: dict[tuple[int, ...], list[ReadingItem]] = {}
        self._tests: dict[tuple[tuple[int, ...], str], ReadingResult] = {}

    def items(self, indices: tuple[int, ...]) -> list[ReadingItem]:
        if indices not in self._items:
            self._items[indices] = self._student.reading_items([self._texts[i] for i in indices])
        return self._items[indices]

    def test(self, indices: tuple[int, ...], statistic: str) -> ReadingResult:
        """The reading test of these texts; ``contrast`` reads them against the reference."""
        key = (indices, statistic)
        if key not in self._tests:
            ref = None
            if statistic == "contrast" and self._reference is not None:
                ref = self._reference(indices)
            self._tests[key] = reading_test(
                self._scheme, self.items(indices), statistic=statistic, reference=ref
            )
        return self._tests[key]


def run_contamination(
    bundle: ContaminationBundle,
    scheme: WatermarkScheme,
    config: ContaminationConfig | None = None,
    *,
    log: Callable[[str], None] = print,
    on_student: Callable[[ContaminationStudent, dict[str, list[np.ndarray]]], None] | None = None,
) -> ContaminationResult:
    """Train the distilled, human-control and contaminated students on ``bundle`` and audit them.

    ``on_student`` is called after each audit with the student's row and its answers per query
    set (to save them, or partial results, while later students train).

    Raises:
        ConfigError: the scheme's key is not the one the bundle was harvested with.
    """
    cfg = config or ContaminationConfig()
    t_start = time.perf_counter()
    key_id = scheme.keyring.primary.key_id  # type: ignore[attr-defined]
    if bundle.meta.get("key_id") not in (None, key_id):
        raise ConfigError(
            f"The bundle was harvested under key {bundle.meta['key_id']} but the scheme holds "
            f"{key_id}: audit with the harvest's key."
        )
    plan: list[tuple[str, float]] = [("distilled", 1.0), ("human-control", cfg.control_fraction)]
    plan += [(f"contaminated-{f:.0%}", f) for f in cfg.fractions]
    if cfg.students is not None and not set(cfg.students) <= {n for n, _ in plan}:
        raise ConfigError(
            f"ContaminationConfig.students names {sorted(set(cfg.students) - {n for n, _ in plan})}, "
            f"which this run does not have; its students: {[n for n, _ in plan]}."
        )
    corpora: dict[str, tuple[list[np.ndarray], int]] = {}
    seen_texts: dict[str, list[int]] = {}  # harvest texts each corpus holds (the control: its twin's)
    for name, f in plan:
        if name == "distilled":
            seqs = [np.concatenate([p, a]) for p, a in zip(bundle.wm_prompts, bundle.wm_answers, strict=True)]
            corpora[name] = (seqs, bundle.wm_tokens)
            seen_texts[name] = list(range(len(seqs)))
        else:
            c = contamination_corpus(bundle, f, seed=cfg.seed, max_tokens=cfg.max_train_tokens)
            corpora[name] = (c.human, 0) if name == "human-control" else (c.wm_pairs + c.human, c.wm_tokens)
            seen_texts[name] = c.harvest_indices
    vocab = student_vocab(
        cfg.student, [s for seqs, _ in corpora.values() for s in seqs], min_count=cfg.vocab_min_count
    )
    log(f"student vocabulary: {vocab.size} ids")

    n_q = cfg.n_queries
    held = list(bundle.held_out[:n_q])
    logged = [bundle.wm_prompts[i] for i in logged_prompt_order(len(bundle.wm_prompts), n_q, cfg.seed)]
    harvest_texts = list(zip(bundle.wm_prompts, bundle.wm_answers, strict=True))
    reading_texts = harvest_texts[: cfg.reading_texts]
    rows: list[ContaminationStudent] = []
    skipped: list[str] = []
    distilled_answers: dict[str, list[np.ndarray]] = {}
    n_params = n_trained = 0
    per_step, per_audit = 0.0, 0.0  # seconds, measured on the students trained so far
    # SmolLM2's (as shipped) predictions on a list of harvest texts, each list read once
    reference = (
        _StudentReader(base_model_student(cfg.student), harvest_texts, scheme, None).items
        if cfg.reading_reference
        else None
    )
    for position, (name, (seqs, wm)) in enumerate(corpora.items()):
        if cfg.students is not None and name not in cfg.students:
            continue
        n_tok = int(sum(s.size for s in seqs))
        steps = _steps(cfg, n_tok)
        elapsed = time.perf_counter() - t_start
        predicted = elapsed + 1.1 * (steps * per_step + per_audit)
        if cfg.time_budget_s is not None and predicted > cfg.time_budget_s:  # predicted ≥ elapsed
            skipped.append(name)
            log(
                f"{name}: skipped, it would end at about {predicted:.0f} s, past the "
                f"{cfg.time_budget_s:.0f} s budget"
            )
            continue
        # seeded by the plan's position, so a student is the same whoever trained before it
        rng = np.random.default_rng([cfg.seed, position])
        seqs = [seqs[i] for i in rng.permutation(len(seqs))]
        student = train_student(seqs, vocab, replace(cfg.student, steps=steps))
        t_audit = time.perf_counter()
        n_params, n_trained = student.n_params, student.n_trained_params
        answers = {
            k: student.answer(
                q,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.suspect_temperature,
                seed=cfg.seed + cfg.student.seed,
                batch_size=cfg.answer_batch,
            )
            for k, q in (("held-out", held), ("logged", logged))
        }
        radio = {
            k: radioactivity_test(scheme, a, curve_points=12, curve_at=CURVE_MARKS)
            for k, a in answers.items()
        }
        all_read = tuple(range(len(reading_texts)))
        trained = tuple(sorted(seen_texts[name])[: cfg.reading_texts])
        reader = _StudentReader(student, harvest_texts, scheme, reference)
        read = reader.test(all_read, "mass")
        read_trained = reader.test(trained, "mass") if trained else None
        contrast = contrast_trained = contrast_controls = None
        if reference is not None:
            contrast = reader.test(all_read, "contrast")
            contrast_trained = reader.test(trained, "contrast") if trained else None
            # the controls read the texts the auditor leans on: the corpus's own, else the first N
            leaned_on = trained or all_read
            contrast_controls = _contrast_controls(
                scheme, reader.items(leaned_on), reference(leaned_on), n_keys=cfg.n_controls,
                rng=np.random.default_rng([cfg.seed, position]),
            )
        row = ContaminationStudent(
            name, wm / n_tok, wm, n_tok, steps, student.final_loss, student.seconds,
            radio["held-out"], radio["logged"], read, read_trained, contrast, contrast_trained,
            contrast_controls,
        )
        rows.append(row)
        per_step = max(per_step, student.seconds / steps)
        per_audit = max(per_audit, time.perf_counter() - t_audit)
        log(
            f"{name}: {wm}/{n_tok} watermarked tokens, {steps} steps, loss {row.final_loss:.2f}, "
            f"{student.seconds:.0f} s; log10 p held-out {radio['held-out'].log10_p_value:.1f}, "
            f"logged {radio['logged'].log10_p_value:.1f}, reading {read.log10_p_value:.1f}"
            + (f" (its own texts {read_trained.log10_p_value:.1f})" if read_trained else "")
            + (f"; contrast {contrast.log10_p_value:.1f}" if contrast else "")
            + (f" (its own texts {contrast_trained.log10_p_value:.1f})" if contrast_trained else "")
        )
        if name == "distilled":
            distilled_answers = answers
        if on_student is not None:
            on_student(row, answers)
        del student

    def controls_on(texts: list[np.ndarray]) -> ControlsResult:
        return answer_controls(scheme, texts, seed=cfg.seed, n_keys=cfg.n_controls)

    return ContaminationResult(
        config=cfg,
        scheme=scheme.name,
        key_id=key_id,
        bundle={
            "wm_answers": len(bundle.wm_answers),
            "wm_tokens": bundle.wm_tokens,
            "human_texts": len(bundle.human),
            "human_tokens": bundle.human_tokens,
            "held_out": len(bundle.held_out),
            **{k: v for k, v in bundle.meta.items() if k != "key_id"},
        },
        n_params=n_params,
        n_trained_params=n_trained,
        vocab_size=vocab.size,
        students=tuple(rows),
        controls=controls_on(distilled_answers["held-out"]) if distilled_answers else None,
        controls_logged=controls_on(distilled_answers["logged"]) if distilled_answers else None,
        skipped=tuple(skipped),
        seconds=time.perf_counter() - t_start,
    )


