"""The fingerprint lines of evidence of an audit, next to the watermark (pure; no I/O).

- :func:`canary_line` — the suspect's answers to the canary probes (served and decoy canaries)
  run through :func:`~distillguard.fingerprint.canaries.canary_test`: which account's canaries
  surfaced, with a Holm-corrected exact p-value.
- :func:`style_line` — any of the suspect's answers run through
  :func:`~distillguard.fingerprint.style.style_test`: does its spelling and use of contractions
  follow one served account's keyed style canaries (exact, Holm over accounts).
- :func:`behaviour_line` — the suspect's answers to probe prompts compared with ours and with
  reference models' answers to the same prompts: the exact rank test of
  :func:`~distillguard.fingerprint.behavioural.behavioural_test`, plus the prompts that carried
  the signal.
- :func:`predictability_line` — the same probes the other way round: the suspect's and the
  references' answers scored by our own model (mean token negative log-likelihood, computed at
  the edge), the exact rank test of
  :func:`~distillguard.fingerprint.behavioural.predictability_test`.

The report combines these with the watermark line (:func:`~distillguard.provenance.report.build_report`).
Collecting the answers (HTTP, model directories, files) is the CLI's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from distillguard.errors import InputError
from distillguard.fingerprint.behavioural import (
    BehaviouralResult,
    behavioural_test,
    embedding_similarity,
    predictability_test,
    similarity_table,
)
from distillguard.fingerprint.canaries import CanaryResult, CanarySet, canary_test
from distillguard.fingerprint.style import StyleResult, count_style, style_test
from distillguard.fingerprint.style_lexicon import default_families
from distillguard.provenance._collect import check_alpha

__all__ = [
    "BehaviourLine",
    "CanaryLine",
    "StyleLine",
    "behaviour_line",
    "canary_line",
    "canary_prompts",
    "predictability_line",
    "style_line",
]


@dataclass(frozen=True)
class CanaryLine:
    """The canary line of evidence.

    Attributes:
        key_id: the public id of the key the canaries were derived from (never the key).
        n_canaries: canaries the suspect was probed about (served and decoy).
        n_prompts: distinct probe questions sent (canaries of different accounts can share a
            concept, hence a question).
        result: the exact test, per account and for the best one.
    """

    key_id: str
    n_canaries: int
    n_prompts: int
    result: CanaryResult

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


CHAR4_SIMILARITY = "char-4-gram Jaccard"  # the behaviour line's default way to compare answers
PREDICTABILITY = "predictability under our model (mean token NLL)"
SIMILARITY_COUNTED = "reference answers at least as close to the suspect's as ours"
PREDICTABILITY_COUNTED = "reference answers our model finds at least as predictable as the suspect's"


@dataclass(frozen=True)
class BehaviourLine:
    """The behavioural line of evidence.

    Attributes:
        references: names of the reference models (file names, ``sharegpt``), never secrets.
        result: the exact rank test.
        signal_prompts: the probe prompts of ``result.top_probes`` (where the suspect sided with
            our model by the largest margin), in the same order.
        similarity: how answers were compared (or, for the predictability view, scored).
        counted: what the statistic counts per probe, for the report.
    """

    references: tuple[str, ...]
    result: BehaviouralResult
    signal_prompts: tuple[str, ...]
    similarity: str = CHAR4_SIMILARITY  # how two answers were compared
    counted: str = SIMILARITY_COUNTED   # what the statistic counts, per probe

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def canary_prompts(registry: CanarySet) -> list[str]:
    """The distinct probe questions to send, in :meth:`CanarySet.probes` order (served and decoy
    canaries interleaved, so the suspect cannot tell them apart by position)."""
    return list(dict.fromkeys(p for _, p in registry.probes()))


def canary_line(
    registry: CanarySet,
    answers: Mapping[str, str],
    *,
    alpha: float = 1e-6,
) -> CanaryLine:
    """Test the suspect's answers to the canary probes.

    Args:
        registry: the canary registry (served canaries per account plus decoys).
        answers: alias → the suspect's answers to that canary's probe questions, joined
            (:meth:`CanarySet.answers_by_alias`). Aliases the suspect was not asked about are
            left out of the test.
        alpha: significance level for naming an account.

    Raises:
        InputError: no answer to any decoy probe (the suspect's chance rate is then unknown),
            or ``answers`` names no canary of the registry.
        ConfigError: alpha outside (0, 1).
    """
    check_alpha(alpha)
    known = {c.alias for c in registry.canaries}
    asked = {a: t for a, t in answers.items() if a in known}
    if not asked:
        raise InputError(
            f"None of the {len(answers)} canary answers names an alias of registry {registry.key_id!r}: "
            "answers and registry do not belong together."
        )
    result = canary_test(registry, asked, alpha=alpha)
    prompts = {q for c in registry.canaries if c.alias in asked for q in c.probes()}
    return CanaryLine(key_id=registry.key_id, n_canaries=len(asked), n_prompts=len(prompts), result=result)


@dataclass(frozen=True)
class StyleLine:
    """The style-canary line of evidence.

    Attributes:
        key_id: the public id of the key the style bits were derived from (never the key).
        n_answers: suspect answers whose style was counted (any prompts: the test needs none).
        result: the exact sign-flip test, per account and for the best one.
    """

    key_id: str
    n_answers: int
    result: StyleResult

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def style_line(registry: CanarySet, answers: Sequence[str], *, alpha: float = 1e-6) -> StyleLine:
    """Test whether the suspect's answers follow one served account's style canaries.

    Args:
        registry: the canary registry (its ``style`` bits per account).
        answers: any of the suspect's answers (canary probes, watermark queries, behaviour probes:
            the more text, the more style families observed).
        alpha: significance level for naming an account.

    Raises:
        InputError: the registry records no style canaries (made before they existed), or no
            answer was given.
        ConfigError: alpha outside (0, 1).
    """
    check_alpha(alpha)
    bits = registry.style_bits()
    if not bits:
        raise InputError(f"Canary registry {registry.key_id!r} records no style canaries "
                         "(made by an older gateway): only the alias canaries can be tested.")
    if not answers:
        raise InputError("The style-canary test needs at least one answer of the suspect.")
    families = default_families()
    lengths = {len(b) for b in bits.values()}
    if len(lengths) == 1 and (m := lengths.pop()) < len(families):
        # Families are only ever appended to the lexicon, so an older registry's bits are the
        # account's choices for the first m families, served and counted by the same rules.
        families = families[:m]
    result = style_test(count_style(answers, families), bits, alpha=alpha, families=families)
    return StyleLine(key_id=registry.key_id, n_answers=len(answers), result=result)


def _probe_inputs(test: str, prompts: Sequence[str], suspect: Sequence[object],
                  references: Mapping[str, object], alpha: float) -> tuple[str, ...]:
    """Check what every behavioural view needs; return the reference names in order."""
    check_alpha(alpha)
    if not references:
        raise InputError(f"The {test} test needs at least one reference model's answers.")
    if len(prompts) != len(suspect):
        raise InputError(f"Got {len(suspect)} suspect answers for {len(prompts)} probe prompts.")
    return tuple(references)


def behaviour_line(
    prompts: Sequence[str],
    suspect: Sequence[str],
    ours: Sequence[str],
    references: Mapping[str, Sequence[str]],
    *,
    alpha: float = 1e-6,
    top: int = 10,
    encode: Callable[[list[str]], np.ndarray] | None = None,
    similarity_name: str = "MiniLM cosine",
) -> BehaviourLine:
    """Run the behavioural test on answers to the same probe prompts.

    Args:
        prompts: the probe prompts, in order.
        suspect, ours: one answer per prompt from the suspect and from our model.
        references: reference-model name → one answer per prompt.
        alpha: significance level of the verdict.
        top: how many signal-carrying prompts to report.
        encode: a sentence encoder (texts → one embedding row each): compare answers by the
            cosine of their embeddings instead of character 4-grams.
        similarity_name: what ``encode`` is, for the report.

    Raises:
        InputError: no references, or an answer list of the wrong length.
        ConfigError: alpha outside (0, 1).
    """
    names = _probe_inputs("behavioural", prompts, suspect, references, alpha)
    refs = [references[n] for n in names]
    if encode is None:
        similarity = CHAR4_SIMILARITY
        sim_ours, sim_refs = similarity_table(suspect, ours, refs)
    else:
        similarity = similarity_name
        texts = [*suspect, *ours, *(t for r in refs for t in r)]
        sim_ours, sim_refs = similarity_table(suspect, ours, refs, embedding_similarity(encode, texts))
    result = behavioural_test(sim_ours, sim_refs, alpha=alpha, top=top)
    return BehaviourLine(
        references=names,
        result=result,
        signal_prompts=tuple(prompts[i] for i in result.top_probes),
        similarity=similarity,
    )


def predictability_line(
    prompts: Sequence[str],
    suspect_nll: Sequence[float],
    references_nll: Mapping[str, Sequence[float]],
    *,
    alpha: float = 1e-6,
    top: int = 10,
    scorer: str = PREDICTABILITY,
) -> BehaviourLine:
    """Run the predictability test on our model's scores of answers to the same probe prompts.

    Args:
        prompts: the probe prompts, in order.
        suspect_nll: per prompt, the mean token negative log-likelihood our model gives the
            suspect's answer (NaN for an empty answer).
        references_nll: reference-model name → the same for its answers. The references must be
            models of the suspect's kind asked with the same settings (not, e.g., a much larger
            model's human-length answers): they stand for what an independent suspect would say.
        alpha: significance level of the verdict.
        top: how many signal-carrying prompts to report.
        scorer: what scored the answers, for the report.

    Raises:
        InputError: no references, or a score list of the wrong length.
        ConfigError: alpha outside (0, 1).
    """
    names = _probe_inputs("predictability", prompts, suspect_nll, references_nll, alpha)
    lengths = [len(references_nll[n]) for n in names]
    if any(n != len(prompts) for n in lengths):
        raise InputError(f"Every model must answer every probe: got {len(prompts)} prompts and reference "
                         f"score lists of lengths {lengths}.")
    refs = np.array([[float(references_nll[n][j]) for n in names] for j in range(len(prompts))],
                    dtype=float).reshape(len(prompts), len(names))
    result = predictability_test(np.asarray(suspect_nll, dtype=float), refs, alpha=alpha, top=top)
    return BehaviourLine(references=names, result=result,
                         signal_prompts=tuple(prompts[i] for i in result.top_probes), similarity=scorer,
                         counted=PREDICTABILITY_COUNTED)
