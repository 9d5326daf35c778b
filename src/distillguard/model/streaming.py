"""Token streaming out of a batched ``model.generate``, one row at a time (torch edge).

transformers ships text streamers for one row only; a gateway batches many callers into one
``generate`` call and still owes each caller its own stream. :class:`RowStreamer` speaks the
streamer protocol ``generate`` calls (``put`` after every step, ``end``) and hands each open
row's ids to a callback; :class:`IncrementalText` turns a growing id sequence into text pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

__all__ = ["IncrementalText", "RowStreamer"]


class RowStreamer:
    """Calls ``on_tokens(row, ids_so_far)`` for every row still open after each step.

    A row closes at its first end-of-turn token (which is not passed on), the same rule the
    generator applies to the finished answer.
    """

    def __init__(self, n_rows: int, eos: Collection[int],
                 on_tokens: Callable[[int, Sequence[int]], None]) -> None:
        self._eos = frozenset(int(t) for t in eos)
        self._on_tokens = on_tokens
        self._ids: list[list[int]] = [[] for _ in range(n_rows)]
        self._open = [True] * n_rows
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        """Receive the prompt ids (first call, ignored) or one new token per row."""
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        for row, tok in enumerate(value.reshape(-1).tolist()):
            if not self._open[row]:
                continue
            if tok in self._eos:
                self._open[row] = False
                continue
            self._ids[row].append(int(tok))
            self._on_tokens(row, self._ids[row])

    def end(self) -> None:
        """Generation is over (nothing is held back)."""


class IncrementalText:
    """Text pieces of a token sequence that grows one token at a time.

    A piece is released only when the decoded prefix is stable: a byte-level tokenizer may
    need several tokens for one character, and meanwhile decoding ends in U+FFFD.
    """

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self.sent = ""

    def update(self, ids: Sequence[int]) -> str:
        """The new text since the last piece ('' when there is none yet)."""
        text = self._decode(ids)
        if text.endswith("\ufffd") or not text.startswith(self.sent):
            return ""
        piece, self.sent = text[len(self.sent):], text
        return piece

    def finish(self, final_text: str) -> str:
        """What is left of ``final_text`` after the pieces already sent."""
        if not final_text.startswith(self.sent):
            return ""  # cannot take back text already sent; the answer as sent is what is logged
        piece, self.sent = final_text[len(self.sent):], final_text
        return piece
