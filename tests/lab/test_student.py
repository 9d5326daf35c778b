"""The lab's student: compact vocabulary, real torch training, and radioactivity end to end."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from distillguard.errors import ConfigError, InputError
from distillguard.lab.student import (
    CompactVocab,
    StudentConfig,
    TokenizerVocab,
    average_students,
    base_model_student,
    student_vocab,
    train_student,
)
from distillguard.provenance import radioactivity_test, reading_test
from distillguard.provenance.simulate import MarkovTeacher
from distillguard.watermark import KGW, KGWConfig, SecretKey

IDS = np.arange(5000, 5048)  # 48 real token ids the toy teacher speaks


def test_compact_vocab_round_trips_and_maps_unknown_ids() -> None:
    v = CompactVocab.build([[7, 9, 9, 100], [3]])
    assert v.size == 2 + 4
    rows = v.encode([3, 7, 9, 100, 55])
    assert rows.tolist() == [2, 3, 4, 5, 0]
    assert v.decode(rows).tolist() == [3, 7, 9, 100]
    assert CompactVocab.build([[1, 1, 2]], min_count=2).ids.tolist() == [-1, -1, 1]
    with pytest.raises(InputError):
        CompactVocab.build([])


def test_student_config_is_validated() -> None:
    with pytest.raises(ConfigError):
        StudentConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError):
        StudentConfig(steps=0)
    with pytest.raises(ConfigError, match="'base'"):
        StudentConfig(base="gpt2")
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="'train_layers'"):
            StudentConfig(base="smollm2", train_layers=bad)  # type: ignore[arg-type]


def test_tokenizer_vocab_is_the_identity_with_an_end_of_answer_row() -> None:
    v = TokenizerVocab(100, eos_row=2)
    assert v.encode([0, 5, 99]).tolist() == [0, 5, 99]
    assert v.decode([5, 2, 7]).tolist() == [5, 7]
    assert v.to_real(np.array([[3, 4]])).tolist() == [[3, 4]]
    assert v.unk_row is None and CompactVocab.build([[4]]).unk_row == 0
    # cache keys tell vocabularies apart
    keys = {v.identity(), TokenizerVocab(100, 3).identity(), CompactVocab.build([[4]]).identity()}
    assert len(keys) == 3
    with pytest.raises(InputError, match=r"\[0, 100\)"):
        v.encode([100])
    with pytest.raises(ConfigError):
        TokenizerVocab(10, eos_row=10)
    # a student from scratch cannot use a tokenizer vocabulary: its table is built from the corpus
    with pytest.raises(ConfigError, match="CompactVocab"):
        train_student([np.arange(10)] * 20, v, StudentConfig(seq_len=8, steps=1))


def test_average_students_mixes_every_weight() -> None:
    import torch

    rng = np.random.default_rng(3)
    data = [IDS[rng.integers(0, IDS.size, 40)] for _ in range(40)]
    vocab = CompactVocab.build(data)
    cfg = StudentConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, seq_len=32, steps=5, batch_size=4)
    a = train_student(data, vocab, cfg)
    b = train_student(data[::-1], vocab, StudentConfig(**{**cfg.__dict__, "seed": 1}))
    mid = average_students(a, b)
    for (name, pa), pb, pm in zip(a.model.named_parameters(), b.model.parameters(), mid.model.parameters(),
                                  strict=True):
        assert torch.allclose(pm, (pa + pb) / 2), name
    same = average_students(a, b, weight=1.0)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), same.model.parameters(), strict=True))
    assert mid.losses == [] and mid.vocab is a.vocab
    assert len(mid.answer([[int(IDS[0])]], max_new_tokens=4)) == 1
    with pytest.raises(ConfigError, match="same vocabulary"):
        average_students(a, train_student(data, CompactVocab.build(data[:3]), cfg))
    with pytest.raises(ConfigError, match="weight"):
        average_students(a, b, weight=1.5)


@pytest.mark.slow
def test_a_trained_student_is_radioactive_and_a_clean_one_is_not() -> None:
    rng = np.random.default_rng(0)
    key = SecretKey(bytes(range(32)))
    scheme = KGW(KGWConfig(context_width=1, delta=3.0), key)
    teacher = MarkovTeacher(IDS.size, rng, scale=1.5)

    def texts(wm: bool, n: int) -> list[np.ndarray]:
        # the watermark sees real ids: generate on indices, with scores laid out on real ids
        idx = rng.integers(0, IDS.size, (n, 1))
        for _ in range(40):
            logits = teacher.table[idx[:, -1]].copy()
            if wm:
                full = np.full((n, int(IDS.max()) + 1), -1e4, dtype=np.float32)
                full[:, IDS] = logits
                logits = scheme.process(IDS[idx[:, -1:]], full, [None] * n)[:, IDS]
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            nxt = (p.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1).clip(0, IDS.size - 1)
            idx = np.concatenate([idx, nxt[:, None]], axis=1)
        return [IDS[r] for r in idx]

    wm, clean = texts(True, 300), texts(False, 300)
    vocab = CompactVocab.build(wm + clean)
    cfg = StudentConfig(
        d_model=32, n_layers=1, n_heads=2, d_ff=64, seq_len=64, steps=150, batch_size=16, lr=1e-2
    )
    prompts = [IDS[rng.integers(0, IDS.size, 2)].tolist() for _ in range(40)]
    results = {}
    for name, data in (("distilled", wm), ("clean", clean)):
        student = train_student(data, vocab, cfg)
        assert student.losses[-1] < student.losses[0]
        answers = student.answer(prompts, max_new_tokens=40, seed=1)
        assert all(np.isin(a, IDS).all() for a in answers)
        # temperature 0 is greedy decoding: the same answers whatever the seed
        greedy = [student.answer(prompts[:8], max_new_tokens=12, temperature=0, seed=s) for s in (1, 2)]
        assert all(np.array_equal(a, b) for a, b in zip(*greedy, strict=True))
        results[name] = (
            radioactivity_test(scheme, answers).log10_p_value,
            reading_test(
                scheme, student.reading_items([([], t.tolist()) for t in wm[:30]])
            ).log10_p_value,
        )
    assert results["distilled"][0] < -4 and results["distilled"][1] < -4
    assert results["clean"][0] > -3 and results["clean"][1] > -3


@pytest.mark.model
def test_a_pretrained_student_fine_tunes_only_its_top_blocks_and_answers_in_real_ids() -> None:
    from distillguard.model.loader import load_model
    from distillguard.model.tokenizer import load_text_tokenizer

    tok = load_text_tokenizer()
    cfg = StudentConfig(base="smollm2", train_layers=1, seq_len=32, steps=3, batch_size=2, lr=1e-3)
    vocab = student_vocab(cfg, [])
    assert vocab == TokenizerVocab(tok.vocab_size, tok.token_id("<|im_end|>"))
    text = [tok.encode(f"The {w} is green and the sky is blue.") for w in ("grass", "leaf", "frog", "pea")]
    student = train_student(text * 6, vocab, cfg)
    base, _ = load_model()
    changed = {
        name.split(".")[2] if name.startswith("model.layers.") else name
        for (name, p), q in zip(student.model.named_parameters(), base.parameters(), strict=True)
        if not p.detach().equal(q)
    }
    top = str(base.config.num_hidden_layers - 1)
    assert changed == {top, "model.norm.weight"}, changed
    assert student.n_trained_params < student.n_params / 10 and len(student.losses) == 3
    prompts = [tok.encode("<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n")]
    (answer,) = student.answer(prompts, max_new_tokens=8, temperature=0)
    assert 0 < answer.size <= 8 and vocab.eos_row not in answer.tolist()
    (item,) = student.reading_items([(prompts[0], text[0])], top_k=4)
    assert item.cand_ids.shape == (text[0].size, 4)
    assert int(item.cand_ids.max()) < vocab.size and vocab.eos_row not in item.cand_ids
    # the reading test's reference: SmolLM2 as it ships, reading exactly the same tokens
    reference = base_model_student(cfg)
    assert all(p.equal(q) for p, q in zip(reference.model.parameters(), base.parameters(), strict=True))
    (ref_item,) = reference.reading_items([(prompts[0], text[0])], top_k=4)
    assert np.array_equal(ref_item.token_ids, item.token_ids)
    assert np.array_equal(ref_item.history, item.history)
    scheme = KGW(KGWConfig(), SecretKey(bytes(range(32))))
    res = reading_test(scheme, [item], statistic="contrast", reference=[ref_item])
    assert res.n_contexts > 0 and res.log10_p_value <= 0.0
    same = reading_test(scheme, [ref_item], statistic="contrast", reference=[ref_item])
    assert same.score == 0.0 and same.p_value == 1.0


def test_device_is_validated_and_a_missing_gpu_is_a_clear_error() -> None:
    import torch

    for bad in ("gpu", "cuda:x", "", 0):
        with pytest.raises(ConfigError, match="'device'"):
            StudentConfig(device=bad)  # type: ignore[arg-type]
    assert StudentConfig(device="cuda:1").device == "cuda:1"
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the missing-GPU error cannot be shown")
    vocab = CompactVocab.build([np.arange(10)])
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_student([np.arange(10)] * 20, vocab, StudentConfig(device="cuda", seq_len=8, steps=1))
