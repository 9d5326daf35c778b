"""Calibration on real text the key never touched: ShareGPT human turns and ChatGPT answers,
tokenised with SmolLM2's tokenizer. The false-positive rate at α (down to 1e-3, over thousands
of texts) stays within the Binomial(N, α) bound, and no human text reaches 1e-6.

Real text repeats itself (lists, code, boilerplate); with the default dedup each distinct
(context, token) tuple is scored once, which is what keeps these p-values exact."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats as sps

from distillguard.watermark import KGW, Gumbel, GumbelConfig, KGWConfig, SecretKey, WatermarkScheme

pytestmark = pytest.mark.model
N_TEXTS = 2000
KEY = SecretKey(bytes.fromhex("c3" * 32))  # never used to generate anything


@pytest.fixture(scope="module")
def real_texts() -> dict[str, list[np.ndarray]]:
    from distillguard.data.corpora import iter_sharegpt
    from distillguard.model.tokenizer import load_text_tokenizer

    tok = load_text_tokenizer()
    human: list[str] = []
    chatgpt: list[str] = []
    # Conversations from #3000 on: the watermark evaluation benchmarks read other ranges.
    for conv in itertools.islice(iter_sharegpt(), 3000, None):
        for role, text in conv.turns:
            bucket = human if role == "human" else chatgpt
            if len(bucket) < N_TEXTS and len(text) >= 200:
                bucket.append(text[:4000])
        if len(human) >= N_TEXTS and len(chatgpt) >= N_TEXTS:
            break
    return {"human": tok.encode_batch(human), "chatgpt": tok.encode_batch(chatgpt)}


@pytest.mark.parametrize("source", ["human", "chatgpt"])
@pytest.mark.parametrize(
    "scheme", [KGW(KGWConfig(), KEY), Gumbel(GumbelConfig(), KEY), KGW(KGWConfig(payload_bits=32), KEY)],
    ids=["kgw", "gumbel", "kgw-payload"])
def test_false_positive_rate_on_real_text(real_texts: dict[str, list[np.ndarray]], source: str,
                                          scheme: WatermarkScheme) -> None:
    texts = real_texts[source]
    assert len(texts) == N_TEXTS
    logp = np.array([scheme.detect(t, decode_payload=False).log10_p_value for t in texts])
    for alpha in (0.1, 0.01, 1e-3):
        hits = int((logp <= math.log10(alpha)).sum())
        assert hits <= sps.binom.ppf(1 - 1e-4, N_TEXTS, alpha), (alpha, hits)
    assert logp.min() > -6, "a text the key never touched reached p <= 1e-6"
