"""A local transformers directory as the suspect: black-box answers and the open-model pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.model
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from distillguard.model.tokenizer import ensure_tokenizer_dir

    d = tmp_path_factory.mktemp("suspect")
    tok = transformers.AutoTokenizer.from_pretrained(str(ensure_tokenizer_dir()))
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    transformers.LlamaForCausalLM(cfg).save_pretrained(str(d))
    tok.save_pretrained(str(d))
    return d


def test_local_model_answers_and_reading_items(model_dir) -> None:
    from distillguard.provenance.suspects import LocalModelSuspect, local_reading_items

    s = LocalModelSuspect(model_dir, max_new_tokens=8, seed=1)
    answers = s.answer(["Hello there", "What is 2+2?"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    items = local_reading_items(model_dir, [([1, 2, 3], [10, 20, 30, 40])], our_vocab_size=49152, top_k=5)
    assert items[0].cand_ids.shape == (4, 5) and np.all(items[0].cand_probs >= 0)
    with pytest.raises(Exception, match="vocabulary"):
        local_reading_items(model_dir, [([1], [2, 3])], our_vocab_size=1000)


def _audit_args(model_dir, tmp_path, *extra: str) -> list[str]:
    from distillguard.watermark import write_key_file

    if not (tmp_path / "k.key").exists():
        write_key_file(tmp_path / "k.key")
    (tmp_path / "p.txt").write_text("Tell me a story\nName three rivers\nWhat is a prime?\n")
    (tmp_path / "ours.jsonl").write_text(
        json.dumps({"token_ids": list(range(100, 160)), "prompt_ids": [1, 2]}) + "\n"
    )
    return [
        "audit", "--key", str(tmp_path / "k.key"), "--model-dir", str(model_dir),
        "--prompts", str(tmp_path / "p.txt"), "--queries", "3", "--max-tokens", "24",
        "--open-model", "--reading-texts", str(tmp_path / "ours.jsonl"), "--controls", "10",
        "--out", str(tmp_path / "r.json"), "--quiet", *extra,
    ]


def test_cli_audit_of_a_local_model(model_dir, tmp_path) -> None:
    from distillguard.cli import main

    code = main(_audit_args(model_dir, tmp_path))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and doc["verdict"] != "radioactive"
    assert doc["radioactivity"]["n_answers"] == 3 and doc["reading"]["n_texts"] == 1
    assert doc["reading"]["statistic"] == "mass"


def test_cli_contrast_reading_against_a_reference_model(model_dir, tmp_path, capsys) -> None:
    from distillguard.cli import main

    # the suspect read against itself: it moved no mass anywhere, so nothing to find
    code = main(_audit_args(model_dir, tmp_path, "--reading-reference", str(model_dir)))
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and doc["reading"]["statistic"] == "contrast" and doc["reading"]["p_value"] == 1.0
    assert main(_audit_args(model_dir, tmp_path, "--reading-statistic", "contrast")) == 2
    assert "go together" in capsys.readouterr().err
    assert main(_audit_args(model_dir, tmp_path, "--reading-reference", str(tmp_path / "nowhere"))) == 2
    assert "does not exist" in capsys.readouterr().err
