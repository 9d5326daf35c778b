from __future__ import annotations

import sys

import numpy as np
import pytest

from distillguard.errors import InputError

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tok():
    from distillguard.model import load_text_tokenizer

    return load_text_tokenizer()


def test_round_trip_and_offsets(tok) -> None:
    text = "The quick brown fox — naïve café, 42 times."
    ids, offsets = tok.encode_with_offsets(text)
    assert ids.dtype == np.int64 and ids.size == len(offsets) > 5
    assert tok.decode(ids) == text
    assert offsets[0][0] == 0 and offsets[-1][1] == len(text)
    assert tok.vocab_size >= 49152


def test_batch_matches_single(tok) -> None:
    texts = ["hello world", "", "Detection needs no torch."]
    assert [list(a) for a in tok.encode_batch(texts)] == [list(tok.encode(t)) for t in texts]


def test_non_text_is_refused(tok) -> None:
    with pytest.raises(InputError):
        tok.encode(b"bytes")  # type: ignore[arg-type]


def test_loading_the_text_tokenizer_does_not_import_torch() -> None:
    import subprocess

    code = (
        "import sys; from distillguard.model import load_text_tokenizer; "
        "t = load_text_tokenizer(); t.encode('hi'); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
