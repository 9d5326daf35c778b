"""Per-row streaming out of a batched generate: the streamer protocol and incremental text."""

from __future__ import annotations

import numpy as np

from distillguard.model.streaming import IncrementalText, RowStreamer

EOS = 2


def test_row_streamer_skips_the_prompt_and_closes_rows_at_their_end_token() -> None:
    seen: list[tuple[int, tuple[int, ...]]] = []
    s = RowStreamer(2, [EOS], lambda row, ids: seen.append((row, tuple(ids))))
    s.put(np.array([[5, 6, 7], [8, 9, 10]]))  # the prompt
    s.put(np.array([11, 12]))
    s.put(np.array([EOS, 13]))  # row 0 ends
    s.put(np.array([0, 14]))  # row 0 is padding from now on
    s.end()
    assert seen == [(0, (11,)), (1, (12,)), (1, (12, 13)), (1, (12, 13, 14))]


def test_incremental_text_holds_back_an_incomplete_character() -> None:
    # A byte-level tokenizer: each id is one byte of UTF-8.
    def decode(ids: list[int] | tuple[int, ...]) -> str:
        return bytes(ids).decode("utf-8", "replace")

    word = "né!".encode()
    inc = IncrementalText(decode)
    pieces = [inc.update(word[:k]) for k in range(1, len(word) + 1)]
    assert pieces == ["n", "", "é", "!"]  # 'é' is two bytes: nothing until both arrived
    assert inc.finish("né! done") == " done" and inc.sent == "né! done"
    assert inc.finish("something else") == ""  # text already sent cannot be taken back
