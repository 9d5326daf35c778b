"""Left-padded batches for ``model.generate`` (torch edge).

Decoder-only generation appends to the right, so rows of different lengths are padded on the
left: every row's last prompt token then sits in the same column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["left_padded"]


def left_padded(rows: Sequence[Sequence[int] | np.ndarray], pad: int) -> tuple[Any, Any]:
    """``(input_ids, attention_mask)`` for rows of token ids (lists or 1-D arrays), both
    ``(len(rows), longest row)`` long tensors."""
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), int(pad), dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        input_ids[i, width - len(r) :] = torch.as_tensor(r, dtype=torch.long)
        mask[i, width - len(r) :] = 1
    return input_ids, mask
