"""Serving-time canaries: account-unique, benign, learnable marks, and the exact test for them.

Two kinds of canary are planted in the answers of an account in canary mode: the *alias*
canaries below, and *style* canaries (:mod:`distillguard.fingerprint.style`: the account's
keyed choice of spelling, contractions and list markers, which the registry records as ``style`` bits).

A canary is an *invented alias* for a real concept — "binary search (sometimes called the
Torvalen method)". The alias is a pronounceable pseudo-word derived from the secret key and the
account, so it is unique to that account and no model can produce it except by having learned
it. When the gateway answers a flagged account in canary mode, answers that touch a canary's
concept get one extra sentence naming the alias; nothing else changes, so a legitimate user who
was wrongly flagged loses nothing but a sentence of trivia.

The test does not assume a base rate. Every canary set also holds *decoys*: aliases made by the
same procedure for labels that were never served. Under the null hypothesis "the suspect did not
learn account a's canaries", a's canaries and the decoys are exchangeable (the suspect cannot
tell them apart), so the number of a's canaries among all reproduced aliases is hypergeometric:
Fisher's exact test, one-sided, computed in log space. The decoys thereby measure this very
suspect's chance rate of emitting any such alias (e.g. a model that echoes odd words).

Decoys cost no queries: the probe questions name the concept, not the alias, so one answer is
checked against every alias of its concept, served or decoy. With n served canaries, D decoys and
no decoy reproduced, k reproduced canaries give p = C(n, k) / C(n + D, k) ≈ (n / (n + D))^k, so the
decoys set the p-value each reproduced canary buys: 40 canaries against 200 decoys need ~9 hits
for 1e-7, against 2,000 decoys 5. Hence the default of 2,000 (≈ 12 per concept of the packaged
list of 166, all of which are then probed: 332 questions).

Tracing runs the test for every account that was ever served canaries and corrects with Holm.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import hypergeom

from distillguard.errors import ConfigError, InputError
from distillguard.fingerprint.style import style_bits
from distillguard.stats import holm_log

__all__ = [
    "PROBE_FORMS",
    "Canary",
    "CanaryConfig",
    "CanaryResult",
    "CanarySet",
    "alias_reproduced",
    "canary_test",
    "make_canaries",
]

# Syllables chosen to give pronounceable, rarely-English words; 20 onsets × 6 nuclei × 8 codas
# = 960 syllables, so three syllables give ~8.8e8 aliases.
_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
           "br", "dr", "kr", "tr", "th", "gl")
_NUCLEI = ("a", "e", "i", "o", "u", "ae")
_CODAS = ("", "n", "l", "r", "s", "th", "m", "v")
_KINDS = ("method", "principle", "effect", "pattern", "rule", "technique")
_DOMAIN = b"distillguard/v1/canary"
_DECOY_PREFIX = "decoy:"
# What each of :meth:`Canary.probes` asks, in that order (reports count hits per form).
PROBE_FORMS = ("another name", "sentence completion")


@dataclass(frozen=True)
class CanaryConfig:
    """How many canaries to plant and how.

    Args:
        per_account: canaries made for each served account (more canaries, more power).
        decoys: never-served canaries that calibrate the test. They cost no probe queries once
            every concept carries one (questions are per concept), and each reproduced served
            canary is worth ≈ log10((per_account + decoys) / per_account) orders of magnitude.
        syllables: length of each alias in syllables (3 gives ~8.8e8 distinct aliases).
    """

    per_account: int = 40
    decoys: int = 2000
    syllables: int = 3

    def __post_init__(self) -> None:
        for name, low in (("per_account", 1), ("decoys", 1), ("syllables", 2)):
            value = getattr(self, name)
            if not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"The {name!r} parameter of CanaryConfig must be an int ≥ {low}. "
                    f"Got {value!r} instead."
                )


@dataclass(frozen=True)
class Canary:
    """One planted mark: ``concept`` is answered with an extra sentence naming ``alias``."""

    label: str          # the account id it was served to, or "decoy:<n>"
    concept: str
    alias: str
    kind: str

    @property
    def is_decoy(self) -> bool:
        return self.label.startswith(_DECOY_PREFIX)

    def sentence(self) -> str:
        """The sentence appended to an answer that touches ``concept``."""
        return f"(Some practitioners also call {self.concept} the {self.alias} {self.kind}.)"

    def probes(self) -> tuple[str, ...]:
        """The questions that invite the alias without containing it: one asks for another name
        of the concept; one asks to complete the planted sentence up to the alias, the form in
        which a student saw it (a student that memorised the sentence more easily finishes it
        than recalls the alias out of that context)."""
        return (
            f"What is another name for {self.concept}? Answer briefly.",
            f"Complete this sentence: Some practitioners also call {self.concept} the",
        )


@dataclass(frozen=True)
class CanarySet:
    """The canary registry: served canaries per account plus decoys, serialisable to JSON."""

    key_id: str
    canaries: tuple[Canary, ...]
    # (account, its style-canary bits): the keyed spelling/contraction/list-marker choices its answers are
    # rewritten to (:mod:`distillguard.fingerprint.style`). Empty in registries made before.
    style: tuple[tuple[str, str], ...] = ()

    def style_bits(self) -> dict[str, str]:
        """Account → its style-canary bits (every account that was served canaries)."""
        return dict(self.style)

    def for_account(self, account_id: str) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if c.label == account_id)

    @property
    def decoys(self) -> tuple[Canary, ...]:
        return tuple(c for c in self.canaries if c.is_decoy)

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(sorted({c.label for c in self.canaries if not c.is_decoy}))

    def plant(self, account_id: str, prompt: str, answer: str, *, max_marks: int = 1) -> str:
        """Return ``answer`` with the sentences of up to ``max_marks`` of the account's canaries
        whose concept the prompt or answer mentions; other answers come back unchanged."""
        mark = self.marks(account_id, prompt, answer, max_marks=max_marks)
        return answer if mark is None else answer.rstrip() + " " + mark

    def marks(self, account_id: str, prompt: str, answer: str, *, max_marks: int = 1) -> str | None:
        """The canary sentence(s) :meth:`plant` would append, or None (streaming servers send
        this as a last chunk)."""
        text = f"{prompt}\n{answer}".lower()
        found = [c.sentence() for c in self.for_account(account_id) if _mentions(text, c.concept)]
        return " ".join(found[:max_marks]) if found else None

    def probes(self) -> list[tuple[Canary, str]]:
        """Every (canary, probe question) pair, served and decoy canaries alike, in a key-shuffled
        order so a suspect sees served and decoy probes interleaved. Canaries that share a
        concept share its questions."""
        pairs = [(c, q) for c in self.canaries for q in c.probes()]
        return sorted(pairs, key=lambda cq: hashlib.sha256(
            f"{self.key_id}|{cq[0].label}|{cq[0].alias}|{cq[1]}".encode()).digest())

    def answers_by_alias(self, said: Mapping[str, str]) -> dict[str, str]:
        """alias → the suspect's answers to that canary's probes, joined (what
        :func:`canary_test` reads), from probe question → answer; canaries none of whose
        probes were answered are left out. Every canary's answers are joined the same way, so
        served canaries and decoys stay exchangeable under the null."""
        out: dict[str, list[str]] = {}
        for c, q in self.probes():
            if q in said:
                out.setdefault(c.alias, []).append(said[q])
        return {a: "\n".join(texts) for a, texts in out.items()}

    def to_json(self) -> str:
        return json.dumps({"key_id": self.key_id, "canaries": [asdict(c) for c in self.canaries],
                           "style": dict(self.style)})

    @classmethod
    def from_json(cls, text: str) -> CanarySet:
        """Parse :meth:`to_json` output; raise :class:`InputError` on anything else."""
        try:
            data = json.loads(text)
            style = data.get("style", {})
            if not all(isinstance(b, str) and not set(b) - {"0", "1"} for b in style.values()):
                raise ValueError("style bits must be strings of 0 and 1")
            return cls(key_id=str(data["key_id"]),
                       canaries=tuple(Canary(**c) for c in data["canaries"]),
                       style=tuple((str(a), b) for a, b in style.items()))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"Not a canary registry (expected key_id and canaries): {exc}") from None


def _mentions(text: str, concept: str) -> bool:
    return re.search(rf"\b{re.escape(concept.lower())}\b", text) is not None


def _alias(seed: bytes, syllables: int) -> str:
    parts = []
    for i in range(syllables):
        b = seed[3 * i: 3 * i + 3]
        parts.append(_ONSETS[b[0] % len(_ONSETS)] + _NUCLEI[b[1] % len(_NUCLEI)]
                     + _CODAS[b[2] % len(_CODAS)])
    return "".join(parts).capitalize()


def make_canaries(
    key: bytes,
    key_id: str,
    accounts: Iterable[str],
    concepts: Sequence[str],
    config: CanaryConfig | None = None,
) -> CanarySet:
    """Derive the canaries of every account (and the decoys) from the secret key.

    Deterministic: the same key, accounts and concepts give the same set, so the registry can be
    rebuilt. Concepts are drawn per account without replacement where possible; aliases are
    unique across the whole set.

    Raises:
        ConfigError: fewer concepts than ``per_account``, or an empty key.
    """
    cfg = config or CanaryConfig()
    if not key:
        raise ConfigError("make_canaries needs the secret key bytes. Got an empty key.")
    if len(concepts) < cfg.per_account:
        raise ConfigError(
            f"make_canaries needs at least per_account={cfg.per_account} concepts. "
            f"Got {len(concepts)} instead."
        )
    subkey = hmac.new(key, _DOMAIN, hashlib.sha256).digest()
    # Decoys first: they then never depend on which accounts were enrolled, so a registry that
    # grows (the gateway enrolls accounts as they are flagged) keeps its calibration set, and an
    # account's canaries depend only on the accounts enrolled before it.
    labels = [f"{_DECOY_PREFIX}{i}" for i in range(math.ceil(cfg.decoys / cfg.per_account))]
    labels += [*dict.fromkeys(accounts)]
    seen: set[str] = set()
    out: list[Canary] = []
    decoys_left = cfg.decoys
    for label in labels:
        n = cfg.per_account if not label.startswith(_DECOY_PREFIX) else min(cfg.per_account, decoys_left)
        if label.startswith(_DECOY_PREFIX):
            decoys_left -= n
        seed = int.from_bytes(hmac.new(subkey, f"order|{label}".encode(), hashlib.sha256).digest()[:8])
        chosen = np.random.default_rng(seed).permutation(len(concepts))[:n]
        for j, ci in enumerate(chosen):
            counter = 0
            while True:
                digest = hmac.new(subkey, f"{label}|{j}|{counter}".encode(), hashlib.sha256).digest()
                alias = _alias(digest, cfg.syllables)
                if alias.lower() not in seen:
                    break
                counter += 1
            seen.add(alias.lower())
            out.append(Canary(label=label, concept=concepts[int(ci)], alias=alias,
                              kind=_KINDS[digest[-1] % len(_KINDS)]))
    style = tuple((a, style_bits(subkey, a)) for a in dict.fromkeys(accounts))
    return CanarySet(key_id=key_id, canaries=tuple(out), style=style)


@dataclass(frozen=True)
class CanaryResult:
    """Which accounts' canaries a suspect reproduced, each with an exact, corrected p-value."""

    decoy_hits: int
    decoys: int
    per_account: dict[str, dict[str, float | int]] = field(default_factory=dict)
    traced_account: str | None = None
    p_value: float = 1.0           # the best account's Holm-corrected p-value
    log10_p_value: float = 0.0
    method: str = ("one-sided Fisher exact test, account canaries vs decoys; "
                   "Holm correction over accounts")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def alias_reproduced(output: str, alias: str) -> bool:
    """Whether ``output`` names ``alias`` as a word (case-insensitive): a canary hit."""
    return re.search(rf"\b{re.escape(alias.lower())}\b", output.lower()) is not None


def canary_test(
    canaries: CanarySet,
    outputs: Mapping[str, str],
    *,
    alpha: float = 1e-6,
) -> CanaryResult:
    """Test a suspect's answers to the canary probes.

    Args:
        canaries: the registry.
        outputs: alias → the suspect's answers to that canary's probes, joined
            (:meth:`CanarySet.answers_by_alias`); only canaries with an answer enter the test.
        alpha: the significance level for naming an account.

    Returns:
        A :class:`CanaryResult`; ``traced_account`` is set only when its corrected p-value is
        ≤ ``alpha``.
    """
    answered = [c for c in canaries.canaries if c.alias in outputs]
    decoys = [c for c in answered if c.is_decoy]
    if not decoys:
        raise InputError("canary_test needs answers to decoy probes: without them the chance "
                         "rate of this suspect is unknown.")
    decoy_hits = sum(alias_reproduced(outputs[c.alias], c.alias) for c in decoys)
    rows: dict[str, dict[str, float | int]] = {}
    for account in canaries.accounts:
        mine = [c for c in answered if c.label == account]
        if not mine:
            continue
        hits = sum(alias_reproduced(outputs[c.alias], c.alias) for c in mine)
        total, success, draws = len(mine) + len(decoys), hits + decoy_hits, len(mine)
        # P(X >= hits), X ~ Hypergeom(population=total, successes=success, draws=draws)
        log_p = float(hypergeom.logsf(hits - 1, total, success, draws)) if hits else 0.0
        rows[account] = {"hits": hits, "canaries": len(mine), "log_p": min(0.0, log_p)}
    if not rows:
        return CanaryResult(decoy_hits=decoy_hits, decoys=len(decoys))
    names = list(rows)
    for name, adjusted in zip(names, holm_log([float(rows[a]["log_p"]) for a in names]).tolist(),
                              strict=True):
        rows[name]["p_value_holm"] = math.exp(adjusted)
        rows[name]["log10_p_holm"] = adjusted / math.log(10)
    best = min(names, key=lambda a: float(rows[a]["log10_p_holm"]))
    best_log10 = float(rows[best]["log10_p_holm"])
    return CanaryResult(
        decoy_hits=decoy_hits,
        decoys=len(decoys),
        per_account=rows,
        traced_account=best if best_log10 <= math.log10(alpha) else None,
        p_value=10.0 ** best_log10,
        log10_p_value=best_log10,
    )
