"""``transformers`` adapter: any registered scheme as a ``LogitsProcessor`` (torch edge).

The adapter only converts tensors to numpy and back; all watermark logic stays in the pure
numpy :meth:`WatermarkScheme.process`, so other servers (vLLM's per-request logits processors,
llama.cpp callbacks) wrap the same core the same way.

Order matters: the scheme contract expects scores after temperature, and before or after top-p
as the scheme's ``before_top_p`` says, but ``model.generate`` runs user processors *before* its
own warpers. Pass the warpers yourself and disable generate's (``temperature=1.0, top_p=1.0,
top_k=0``), as :func:`sampling_processors` does::

    procs = sampling_processors(scheme, payloads=[acct_a, acct_b], temperature=0.8, top_p=0.95)
    model.generate(**batch, logits_processor=procs, do_sample=True,
                   temperature=1.0, top_p=1.0, top_k=0)

One batch can serve several accounts: ``payloads[i]`` is row i's account id (or None).
Beam search and ``num_return_sequences > 1`` multiply rows; pass one payload per resulting row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distillguard.errors import InputError, missing_extra
from distillguard.watermark.base import WatermarkScheme

try:
    import torch
    from transformers import LogitsProcessor, LogitsProcessorList
    from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper
except ImportError as _exc:  # pragma: no cover - exercised only without the [model] extra
    raise missing_extra(getattr(_exc, "name", None) or "transformers", "model") from _exc

__all__ = ["WatermarkLogitsProcessor", "sampling_processors"]


class WatermarkLogitsProcessor(LogitsProcessor):
    """Apply ``scheme.process`` to each generation step, with one payload per batch row.

    Args:
        scheme: a built :class:`~distillguard.watermark.base.WatermarkScheme`.
        payloads: one account id (or None) per row of the batch ``generate`` runs.
    """

    def __init__(self, scheme: WatermarkScheme, payloads: Sequence[int | None]) -> None:
        if not isinstance(scheme, WatermarkScheme):
            raise InputError(f"Expected a WatermarkScheme. Got {type(scheme).__name__} instead.")
        self.scheme = scheme
        self.payloads = list(payloads)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Return the watermarked scores as a tensor of the input's dtype and device."""
        if scores.shape[0] != len(self.payloads):
            raise InputError(
                f"The batch has {scores.shape[0]} rows but {len(self.payloads)} payloads were given; "
                "pass one payload per generated row."
            )
        ids = input_ids.detach().to("cpu", torch.int64).numpy()
        sc = scores.detach().to("cpu", torch.float32).numpy()
        out = self.scheme.process(ids, np.ascontiguousarray(sc), self.payloads)
        return torch.from_numpy(np.ascontiguousarray(out)).to(device=scores.device, dtype=scores.dtype)

    def __repr__(self) -> str:
        return f"WatermarkLogitsProcessor({self.scheme!r}, rows={len(self.payloads)})"


def sampling_processors(
    scheme: WatermarkScheme | None,
    payloads: Sequence[int | None],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> LogitsProcessorList:
    """Temperature, then the watermark and top-p in the order the scheme asks for
    (``before_top_p``: green-list biases before truncation, sampling schemes after it).

    Use with ``generate(..., do_sample=True, temperature=1.0, top_p=1.0, top_k=0)`` so
    generate adds no warpers of its own after the watermark.
    """
    procs = LogitsProcessorList()
    if temperature != 1.0:
        procs.append(TemperatureLogitsWarper(float(temperature)))
    mark = [WatermarkLogitsProcessor(scheme, payloads)] if scheme is not None else []
    before = scheme is not None and scheme.before_top_p
    procs.extend(mark if before else [])
    if top_p < 1.0:
        procs.append(TopPLogitsWarper(float(top_p)))
    procs.extend([] if before else mark)
    return procs
