"""The transformers adapter against the numpy core, on random logits and a tiny random model.

(``watermark/hf.py`` is the torch edge of the watermark package; its tests live here with the
other torch-dependent tests so the watermark suite stays torch-free.)
"""

from __future__ import annotations

import numpy as np
import pytest

from distillguard.errors import InputError
from distillguard.watermark import schemes

torch = pytest.importorskip("torch")
hf = pytest.importorskip("distillguard.watermark.hf")

VOCAB = 1000


def _scheme(name: str, key, payload: bool):
    cls = schemes.get(name)
    return cls(cls.config_class(payload_bits=32 if payload else 0), key)


@pytest.mark.parametrize("payload", [False, True])
@pytest.mark.parametrize("name", schemes.names())
def test_processor_equals_numpy_core(name, payload, wm_key, rng) -> None:
    scheme = _scheme(name, wm_key, payload)
    ids = rng.integers(0, VOCAB, (4, 12))
    scores = rng.standard_normal((4, VOCAB)).astype(np.float32)
    payloads = [11, 22, None, 11] if payload else [None] * 4
    expected = scheme.process(ids, scores, payloads)
    proc = hf.WatermarkLogitsProcessor(scheme, payloads)
    out = proc(torch.from_numpy(ids), torch.from_numpy(scores))
    assert out.dtype == torch.float32 and out.shape == (4, VOCAB)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_processor_keeps_dtype(wm_key, rng) -> None:
    scheme = _scheme("kgw", wm_key, False)
    scores = torch.from_numpy(rng.standard_normal((2, VOCAB)).astype(np.float32)).to(torch.bfloat16)
    out = hf.WatermarkLogitsProcessor(scheme, [None, None])(torch.zeros((2, 5), dtype=torch.long), scores)
    assert out.dtype == torch.bfloat16


def test_payload_count_must_match_rows(wm_key) -> None:
    proc = hf.WatermarkLogitsProcessor(_scheme("kgw", wm_key, True), [1, 2])
    with pytest.raises(InputError, match="one payload per generated row"):
        proc(torch.zeros((3, 4), dtype=torch.long), torch.zeros((3, VOCAB)))


def test_rejects_non_scheme() -> None:
    with pytest.raises(InputError):
        hf.WatermarkLogitsProcessor(object(), [None])  # type: ignore[arg-type]


def test_sampling_processors_order_follows_the_scheme(wm_key) -> None:
    kgw = hf.sampling_processors(_scheme("kgw", wm_key, False), [None], temperature=0.7, top_p=0.9)
    assert [type(p).__name__ for p in kgw] == [
        "TemperatureLogitsWarper",
        "WatermarkLogitsProcessor",  # a green-list bias before truncation
        "TopPLogitsWarper",
    ]
    gumbel = hf.sampling_processors(_scheme("gumbel", wm_key, False), [None], temperature=0.7, top_p=0.9)
    assert [type(p).__name__ for p in gumbel] == [
        "TemperatureLogitsWarper",
        "TopPLogitsWarper",
        "WatermarkLogitsProcessor",  # sampling schemes sample the truncated distribution
    ]
    assert len(hf.sampling_processors(None, [None])) == 0


@pytest.mark.parametrize("name", schemes.names())
def test_per_row_payloads_in_one_generate_call(name, wm_key, tiny_model) -> None:
    """Three rows, three accounts, one model.generate: each row carries its own payload."""
    scheme = _scheme(name, wm_key, True)
    accounts = [1_000_003, 2_000_029, 3_000_017]
    torch.manual_seed(1)
    prompt = torch.randint(3, 500, (3, 8))
    out = tiny_model.generate(
        input_ids=prompt,
        attention_mask=torch.ones_like(prompt),
        logits_processor=hf.sampling_processors(scheme, accounts),
        max_new_tokens=300,
        min_new_tokens=300,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        pad_token_id=0,
    )
    for row, acct in zip(out[:, 8:].numpy(), accounts, strict=True):
        det = scheme.detect(row, alpha=1e-6)
        assert det.watermarked
        trace = scheme.trace(row, accounts, alpha=1e-6)
        assert trace.account == acct and trace.separated
