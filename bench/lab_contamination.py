"""Contaminated students at scale: the whole harvest mixed into human text at 10%, 5% and 1%.

Two halves, so the students can train where the compute is (see distillguard.lab.contamination):

    # where SmolLM2 runs (CPU is fine; the harvest is cached under .cache/lab/):
    .venv/bin/python bench/lab_contamination.py prepare --n-harvest 2000 --out .cache/lab/contamination.npz
    # where the students train (a GPU: --device cuda; CPU works with smaller students):
    .venv/bin/python bench/lab_contamination.py run --bundle .cache/lab/contamination.npz --device cuda \
        --out .cache/lab/contamination
    # write the docs/benchmarks.md section from the results (on any machine):
    .venv/bin/python bench/lab_contamination.py render --results .cache/lab/contamination/results.json

`run` writes results.json (and answers.npz, the students' answers, for rescoring) after every
student, so a run stopped by a time limit keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import markdown_table, student_model, write_section
from _students import add_base_args, base_fields
from lab_distillation import LAB_KEY, _p

from distillguard.lab.contamination import (
    ContaminationBundle,
    ContaminationConfig,
    ContaminationStudent,
    run_contamination,
)
from distillguard.lab.student import StudentConfig
from distillguard.watermark import schemes

ROOT = Path(__file__).resolve().parent.parent


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def prepare(args: argparse.Namespace) -> int:
    from distillguard.lab.harvest import chat_prompt_ids, harvest, sharegpt_prompts
    from distillguard.lab.run import human_corpus
    from distillguard.model import Generator

    cls = schemes.get(args.scheme)
    scheme = cls(cls.config_class(), LAB_KEY)  # type: ignore[attr-defined, call-arg]
    gen = Generator.load(None, num_threads=args.threads).with_scheme(scheme)
    prompts = sharegpt_prompts(args.n_harvest)
    held_out = sharegpt_prompts(args.queries, offset=args.n_harvest)
    wm = harvest(
        gen, prompts, cache_dir=ROOT / ".cache" / "lab", tag="wm-big", max_new_tokens=args.max_new_tokens,
        temperature=0.8, seed=0, batch_size=32, progress=lambda d, n: _log(f"harvest {d}/{n}"),
    )
    wm_tokens = sum(len(r.token_ids) for r in wm)
    # enough human text for the smallest fraction (prompts count as training tokens too)
    want = int(wm_tokens / args.min_fraction) + 1
    t0 = time.perf_counter()
    human = human_corpus(gen.tokenizer, want, set(prompts) | set(held_out))
    _log(f"human corpus: {len(human)} texts, {sum(h.size for h in human)} tokens "
         f"({time.perf_counter() - t0:.0f} s; wanted {want})")
    import numpy as np

    bundle = ContaminationBundle(
        wm_prompts=tuple(np.asarray(r.prompt_ids, dtype=np.int64) for r in wm),
        wm_answers=tuple(np.asarray(r.token_ids, dtype=np.int64) for r in wm),
        human=tuple(human),
        held_out=tuple(np.asarray(p, dtype=np.int64) for p in chat_prompt_ids(gen.tokenizer, held_out)),
        meta={
            "scheme": scheme.name,
            "scheme_config": asdict(scheme.config),  # type: ignore[attr-defined]
            "key_id": scheme.keyring.primary.key_id,  # type: ignore[attr-defined]
            "n_harvest": args.n_harvest,
            "max_new_tokens": args.max_new_tokens,
            "harvest_temperature": 0.8,
        },
    )
    path = bundle.save(Path(args.out))
    _log(f"bundle: {path} ({path.stat().st_size / 1e6:.1f} MB; {bundle.wm_tokens} watermarked answer tokens, "
         f"{bundle.human_tokens} human tokens, {len(bundle.held_out)} held-out prompts)")
    return 0


def run(args: argparse.Namespace) -> int:
    import numpy as np

    bundle = ContaminationBundle.load(Path(args.bundle))
    cls = schemes.get(bundle.meta.get("scheme", "kgw"))
    scheme = cls(cls.config_class(**bundle.meta.get("scheme_config", {})), LAB_KEY)  # type: ignore[attr-defined, call-arg]
    cfg = ContaminationConfig(
        fractions=tuple(float(f) for f in args.fractions.split(",")),
        control_fraction=args.control_fraction,
        epochs=args.epochs,
        min_steps=args.min_steps,
        student=StudentConfig(
            d_model=args.d_model, n_layers=args.n_layers, n_heads=args.n_heads, d_ff=args.d_model * 4,
            seq_len=args.seq_len, batch_size=args.batch_size, threads=args.threads,
            device=args.device, seed=args.student_seed, **base_fields(args),
        ),
        n_queries=min(args.queries, len(bundle.held_out), len(bundle.wm_prompts)),
        reading_texts=args.reading_texts,
        n_controls=args.controls,
        time_budget_s=args.time_budget,
        max_train_tokens=args.max_train_tokens,
        vocab_min_count=args.vocab_min_count,
        students=tuple(args.students.split(",")) if args.students else None,
        reading_reference=args.reading_reference,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done: list[ContaminationStudent] = []
    answers: dict[str, np.ndarray] = {}
    machine = _machine(args.device)

    def save(row: ContaminationStudent, ans: dict[str, list[np.ndarray]]) -> None:
        done.append(row)
        for k, seqs in ans.items():
            answers[f"{row.name}/{k}/ids"] = np.concatenate(seqs).astype(np.uint32) if seqs else np.zeros(0)
            answers[f"{row.name}/{k}/len"] = np.array([s.size for s in seqs], dtype=np.int64)
        with open(out / "answers.npz", "wb") as fh:
            np.savez_compressed(fh, **answers)
        partial = {"partial": True, "machine": machine, "students": [asdict(r) for r in done]}
        (out / "results.json").write_text(json.dumps(partial, indent=1, default=str))

    res = run_contamination(bundle, scheme, cfg, log=_log, on_student=save)
    full = {"partial": False, "machine": machine, **asdict(res)}
    (out / "results.json").write_text(json.dumps(full, indent=1, default=str))
    _log(f"done in {res.seconds:.0f} s; results in {out / 'results.json'}")
    if args.section:
        _write([full], args.section)
    return 0


def _machine(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    return f"{platform.machine()} CPU, {platform.python_version()}"


def _at(res: dict[str, Any], mark: int) -> str:
    pts = [c for c in res["curve"] if c["n_queries"] == mark]
    return _p(pts[0]["log10_p_value"]) if pts else "–"


def _reading(res: dict[str, Any] | None) -> str:
    return f"{_p(res['log10_p_value'])} ({res['n_contexts']} ctx)" if res else "–"


def _controls(c: dict[str, Any] | None) -> str:
    if not c:
        return "–"
    return f"{'passed' if c['passed'] else '**FAILED**'} (min p {_p(c['min_log10_p_value'])})"


def render(results: dict[str, Any]) -> str:
    """The benchmarks section's body from a results.json (full or partial)."""
    cfg = results.get("config", {})
    st = cfg.get("student", {})
    rows = []
    contrasted = any(s.get("contrast") for s in results["students"])
    # training order puts the targets first; the table reads from most to least watermarked
    for s in sorted(results["students"], key=lambda s: -s["fraction"]):
        h, lg, rd = s["radioactivity"], s["logged"], s["reading"]
        rows.append([
            s["name"], f"{100 * s['fraction']:.2f}%", f"{s['watermarked_tokens']:,}",
            f"{s['train_tokens']:,}",
            s["steps"], f"{s['final_loss']:.2f}",
            *(_at(h, m) for m in (100, 300, 1000)), _p(h["log10_p_value"]),
            *(_at(lg, m) for m in (100, 1000)), _p(lg["log10_p_value"]),
            f"{_p(rd['log10_p_value'])} ({rd['n_contexts']} ctx)",
            _reading(s.get("reading_trained")),
            *([_reading(s.get("contrast")), _reading(s.get("contrast_trained")),
               _controls(s.get("contrast_controls"))] if contrasted else []),
        ])
    lines = [
        f"Students trained and audited on {results.get('machine', '?')}"
        + (" (**partial**: the run stopped before the end)" if results.get("partial") else "") + ".",
    ]
    b = results.get("bundle")
    if b:
        lines.append(
            f"Harvest: {b['wm_answers']:,} watermarked SmolLM2 answers ({b['wm_tokens']:,} answer tokens, "
            f"{b.get('scheme', 'kgw')} {json.dumps(b.get('scheme_config', {}))}, T = "
            f"{b.get('harvest_temperature', 0.8)}); human text: "
            f"{b['human_texts']:,} ShareGPT (prompt, ChatGPT answer) pairs, {b['human_tokens']:,} tokens."
        )
    if st:
        pretrained = st.get("base") == "smollm2"
        training = (
            f"window {st['seq_len']}, batch {st['batch_size']}, lr {st['lr']}, {cfg['epochs']:g} epochs "
            f"(at least {cfg['min_steps']} steps)"
        )
        model = student_model(st, n_params=results.get("n_params", 0),
                              n_trained_params=results.get("n_trained_params", 0),
                              vocab_size=results.get("vocab_size", 0), training=training)
        lines.append(
            f"Every student: {model}, seed {st.get('seed', 0)}. "
            f"Suspect answers at "
            f"T = {cfg['suspect_temperature']}, {cfg['max_new_tokens']} new tokens; the human-control "
            f"student is the {100 * cfg['control_fraction']:g}% student's human text without our answers."
            + (f" Each contaminated corpus capped at {cfg['max_train_tokens']:,} tokens (the harvest share "
               "cut to keep the fraction)." if cfg.get("max_train_tokens") else "")
            + (f" Vocabulary: ids seen at least {cfg['vocab_min_count']} times."
               if cfg.get("vocab_min_count", 1) > 1 and not pretrained else "")
        )
    lines += [
        "",
        markdown_table(
            ["student", "watermarked", "wm tokens", "train tokens", "steps", "loss",
             "held-out p @100", "@300", "@1000", "all", "logged p @100", "@1000", "all", "reading p",
             "reading p, its corpus's texts",
             *(["contrast p", "contrast p, its corpus's texts", "contrast, never-used keys"]
               if contrasted else [])],
            rows,
        ),
        "",
    ]
    lines.append(
        f"'reading p' reads the first {cfg.get('reading_texts', '?')} harvest texts, whether or not a "
        "student's corpus holds them (an auditor reading the account's whole log, of which a capped "
        "corpus holds a random part); 'its corpus's texts' reads only those its corpus holds (the "
        "contaminator used all of the account's answers; for the human-control: its twin's, which it "
        "never saw).\n"
    )
    if contrasted:
        lines.append(
            "'contrast' reads the same texts with the contrast statistic: the student's mass on green "
            "tokens minus that of SmolLM2-135M-Instruct as it ships (no watermark; the pretrained "
            "students' starting point), the mixture bound over a fixed λ grid; its null controls re-run "
            "it under "
            f"{cfg.get('n_controls', '?')} never-used keys on the corpus's texts (fraction of p ≤ 0.01 "
            "and ≤ 0.05 within the 99.9% binomial bound).\n"
        )
    for key, what in (("controls", "held-out answers"), ("controls_logged", "logged answers")):
        c = results.get(key)
        if c:
            lines.append(
                f"- Null controls on the distilled student's {what} ({c['n_keys']} never-used keys): "
                + ", ".join(f"{f:.3f} of p ≤ {a:g} (bound {ub:.3f})" for a, f, ub in
                            zip(c["alphas"], c["fractions_below"], c["upper_bounds"], strict=True))
                + f", smallest p {_p(c['min_log10_p_value'])} — {'passed' if c['passed'] else 'FAILED'}."
            )
    if results.get("skipped"):
        lines.append(f"- Skipped by the time budget: {', '.join(results['skipped'])}.")
    if "seconds" in results:
        lines.append(f"- Wall time of the run: {results['seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def _run_title(results: dict[str, Any]) -> str:
    cfg = results.get("config", {})
    cap = cfg.get("max_train_tokens")
    base = cfg.get("student", {}).get("base", "scratch")
    return (
        ("SmolLM2 fine-tuned, " if base == "smollm2" else "")
        + f"{cfg.get('epochs', '?'):g} epochs, "
        + (f"corpora capped at {cap:,} tokens, " if cap else "whole harvest, ")
        + f"student seed {cfg.get('student', {}).get('seed', '?')}"
        + (f", only {', '.join(cfg['students'])}" if cfg.get("students") else "")
    )


def _write(results: list[dict[str, Any]], section: str, command: str | None = None) -> None:
    blocks = [render(r) for r in results]
    if len(results) > 1:  # repeats (other seeds, epochs or caps): one sub-heading each
        blocks = [f"### {_run_title(r)}\n\n{b}" for r, b in zip(results, blocks, strict=True)]
    body = "\n\n".join(blocks)
    print(body)
    write_section(section, f"Contaminated students at scale ({section})", body, command)


def render_cmd(args: argparse.Namespace) -> int:
    results = []
    for path in args.results:
        try:
            results.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"error: cannot read results {path}: {exc}") from None
    _write(results, args.section, args.command)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="harvest (cached) and write the bundle; needs SmolLM2")
    p.add_argument("--scheme", default="kgw", choices=schemes.names())
    p.add_argument("--n-harvest", type=int, default=2000)
    p.add_argument("--queries", type=int, default=1000, help="held-out prompts to include")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--min-fraction", type=float, default=0.01, help="human text enough for this fraction")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / ".cache" / "lab" / "contamination.npz"))
    p.set_defaults(fn=prepare)
    r = sub.add_parser("run", help="train and audit the students of a bundle")
    r.add_argument("--bundle", default=str(ROOT / ".cache" / "lab" / "contamination.npz"))
    r.add_argument("--out", default=str(ROOT / ".cache" / "lab" / "contamination"))
    r.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    r.add_argument("--fractions", default="0.10,0.05,0.01")
    r.add_argument("--control-fraction", type=float, default=0.05)
    r.add_argument("--epochs", type=float, default=2.0)
    r.add_argument("--min-steps", type=int, default=400)
    r.add_argument("--d-model", type=int, default=128)
    r.add_argument("--n-layers", type=int, default=2)
    r.add_argument("--n-heads", type=int, default=4)
    r.add_argument("--seq-len", type=int, default=128)
    r.add_argument("--batch-size", type=int, default=8)
    add_base_args(r, lr_default=3e-3)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--student-seed", type=int, default=0,
                   help="initialisation, batch order and answer sampling (the corpora stay the same)")
    r.add_argument("--queries", type=int, default=1000)
    r.add_argument("--reading-texts", type=int, default=300)
    r.add_argument("--controls", type=int, default=100)
    r.add_argument("--max-train-tokens", type=int, default=None,
                   help="cap each contaminated corpus (CPU-sized runs); default the whole harvest")
    r.add_argument("--vocab-min-count", type=int, default=1,
                   help="keep ids seen at least this often (a narrower, cheaper output layer)")
    r.add_argument("--students", default=None,
                   help="comma-separated students to train (e.g. contaminated-1%%); default: all")
    r.add_argument("--reading-reference", action="store_true",
                   help="also the contrast reading test against SmolLM2 as it ships (+ null controls)")
    r.add_argument("--time-budget", type=float, default=None, help="seconds; later students are skipped")
    r.add_argument("--section", default=None, help="also write this docs/benchmarks.md section")
    r.set_defaults(fn=run)
    d = sub.add_parser("render", help="write a benchmarks section from a results.json")
    default_results = str(ROOT / ".cache" / "lab" / "contamination" / "results.json")
    d.add_argument("--results", nargs="+", default=[default_results],
                   help="results.json files; more than one: repeats shown one after the other")
    d.add_argument("--section", default="lab-contamination")
    d.add_argument("--command", default=None, help="the command that produced the results")
    d.set_defaults(fn=render_cmd)
    args = ap.parse_args()
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
