from distillguard.data import human_eval_prompts, iter_sharegpt


def test_sharegpt_decodes_incrementally() -> None:
    convos = list(iter_sharegpt(limit=50))
    assert len(convos) == 50
    assert all(c.id for c in convos)
    assert sum(1 for c in convos for _ in c.pairs()) > 50


def test_sharegpt_truncated_file_ends_cleanly(tmp_path) -> None:
    good = '[{"id": "a", "conversations": [{"from": "human", "value": "hi"}]},\n {"id": "b", "conv'
    p = tmp_path / "t.json"
    p.write_text(good)
    assert [c.id for c in iter_sharegpt(p)] == ["a"]


def test_human_eval() -> None:
    probs = human_eval_prompts()
    assert len(probs) == 164 and probs[0]["task_id"] == "HumanEval/0"
