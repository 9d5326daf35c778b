"""How likely a causal LM finds given answers after given prompts (torch edge).

Prompts are chat-templated one-turn user messages with the assistant turn opened
(:func:`chat_prompt_ids`): what our model is given when it serves, what a lab student is trained
on before an answer, and what a suspect is asked.

Used to score a suspect's answers under our own model (the behavioural predictability line)
and to price what a canary costs the user it is served to. Rows are right-padded: with causal
attention a pad *after* a row's last token cannot change the logits of the tokens before it,
and every row keeps positions 0, 1, … (left padding would shift a rotary model's positions
unless position ids were passed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from distillguard.errors import ConfigError

__all__ = ["answer_mean_nll", "chat_prompt_ids", "token_ids", "token_nll"]


def chat_prompt_ids(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Each prompt as a one-turn user chat, chat-templated with the assistant turn opened: what
    the teacher was given, what a student is trained on before the answer, what a suspect gets."""
    out = []
    for p in prompts:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True
        )
        out.append([int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)])
    return out


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens (an answer, as our model would read it)."""
    return list(tokenizer.encode(text, add_special_tokens=False))


def token_nll(
    model: Any,
    rows: Sequence[tuple[Sequence[int], Sequence[int]]],
    *,
    batch_size: int = 8,
    pad_id: int = 0,
) -> list[np.ndarray]:
    """Per-token negative log-likelihood (nats) of each row's answer ids after its head ids.

    Args:
        model: a causal LM returning ``.logits`` (a ``transformers`` model).
        rows: ``(head ids, answer ids)`` per row; the head must hold at least one token.
        batch_size: rows per forward pass (rows are grouped by length to pad little).
        pad_id: the id written after a short row (never scored).

    Returns:
        One float array per row, in the order given, of the answer's length (empty for an
        empty answer).

    Raises:
        ConfigError: batch_size < 1, or a row with an empty head (its first answer token would
            have nothing to be predicted from).
    """
    import torch

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"The 'batch_size' parameter must be an int ≥ 1. Got {batch_size!r} instead.")
    if any(len(head) == 0 for head, _ in rows):
        raise ConfigError("Every row needs at least one head token before its answer; got an empty head.")
    out: list[np.ndarray] = [np.zeros(0) for _ in rows]
    order = sorted((i for i, (_, a) in enumerate(rows) if len(a)),
                   key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    for start in range(0, len(order), batch_size):
        group = order[start: start + batch_size]
        seqs = [[*map(int, rows[i][0]), *map(int, rows[i][1])] for i in group]
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), int(pad_id), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        with torch.inference_mode():
            logits = model(input_ids=ids).logits[:, :-1].float()
            nll = torch.nn.functional.cross_entropy(
                logits.transpose(1, 2), ids[:, 1:], reduction="none").numpy()
        for r, i in enumerate(group):
            head, answer = len(rows[i][0]), len(rows[i][1])
            out[i] = nll[r, head - 1: head - 1 + answer].astype(np.float64)
    return out


def answer_mean_nll(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    *,
    max_tokens: int,
    batch_size: int = 8,
) -> list[float]:
    """Mean per-token NLL of each answer's first ``max_tokens`` tokens after its chat prompt.

    The answers are text, re-tokenised, as a black-box audit sees them; cutting every answer to
    one budget keeps a long answer from being judged on tokens a short one never had. NaN for an
    empty answer.

    Raises:
        ConfigError: max_tokens < 1, or prompts and answers of different lengths.
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ConfigError(f"The 'max_tokens' parameter must be an int ≥ 1. Got {max_tokens!r} instead.")
    if len(prompts) != len(answers):
        raise ConfigError(f"Got {len(answers)} answers for {len(prompts)} prompts; expected one each.")
    heads = chat_prompt_ids(tokenizer, prompts)
    rows = [(h, token_ids(tokenizer, a)[:max_tokens])
            for h, a in zip(heads, answers, strict=True)]
    pad = getattr(tokenizer, "pad_token_id", None) or 0
    return [float(x.mean()) if x.size else math.nan
            for x in token_nll(model, rows, batch_size=batch_size, pad_id=pad)]
