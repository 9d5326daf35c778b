from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import ConfigError
from distillguard.model.likelihood import token_nll


def _one_at_a_time(model, head: list[int], answer: list[int]) -> np.ndarray:
    import torch

    ids = torch.tensor([head + answer])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    return -logp.gather(1, ids[0, 1:, None])[:, 0].numpy()[len(head) - 1:]


def test_batched_rows_score_as_each_row_alone(tiny_model) -> None:
    rng = np.random.default_rng(3)
    rows = [([1, *rng.integers(3, 500, h).tolist()], rng.integers(3, 500, a).tolist())
            for h, a in ((4, 9), (11, 2), (1, 0), (7, 15), (2, 5))]
    got = token_nll(tiny_model, rows, batch_size=2)
    assert [g.size for g in got] == [len(a) for _, a in rows]  # in order; the empty answer is empty
    for (head, answer), g in zip(rows, got, strict=True):
        if answer:
            np.testing.assert_allclose(g, _one_at_a_time(tiny_model, head, answer), rtol=1e-4, atol=1e-4)


def test_rejects_a_row_without_head_and_a_bad_batch(tiny_model) -> None:
    with pytest.raises(ConfigError, match="head"):
        token_nll(tiny_model, [([], [5, 6])])
    with pytest.raises(ConfigError, match="batch_size"):
        token_nll(tiny_model, [([1], [5])], batch_size=0)
