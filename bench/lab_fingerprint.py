"""The fingerprint lab: canaries, behavioural fingerprint and their survival on real students.

    .venv/bin/python bench/lab_fingerprint.py            # defaults (see FingerprintLabConfig)
    .venv/bin/python bench/lab_fingerprint.py --quick    # a smoke run in a few minutes

SmolLM2 passes (harvest, paraphrase, our probe answers) are cached under .cache/lab/ (tags
fp-*). Results go to the "lab-fingerprint" section of docs/benchmarks.md and to
.cache/lab/results-fingerprint.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import markdown_table, student_model, write_section
from _students import add_base_args, base_fields

from distillguard.fingerprint.canaries import CanaryConfig
from distillguard.fingerprint.style_lexicon import default_families as style_families
from distillguard.lab.fingerprint_lab import FingerprintLabConfig, FingerprintLabResult, run_fingerprint_lab
from distillguard.lab.student import StudentConfig
from distillguard.provenance.lines import BehaviourLine
from distillguard.watermark import KGW, KGWConfig, SecretKey

ROOT = Path(__file__).resolve().parent.parent
# A fixed, public lab key (canaries and watermark): an experiment, never reuse it to serve.
FP_LAB_KEY = SecretKey(bytes(range(11, 43)))
QUICK = {
    "accounts": 3, "distiller": 1, "canary": CanaryConfig(per_account=10, decoys=30),
    "n_sharegpt": 8, "max_new_tokens": 16, "n_probes": 12, "n_distilled": 2, "n_controls": 2,
    "n_references": 1, "scrub_steps": 10, "quality_answers": 4, "traffic_conversations": 200,
    "style_probes": 12, "style_tokens": 32,
    "student": StudentConfig(steps=30),
}


def _p(log10_p: float) -> str:
    if not math.isfinite(log10_p):
        return "0"
    return f"{10**log10_p:.2g}" if log10_p > -3 else f"1e{log10_p:.1f}"


def _rank(line: BehaviourLine | None) -> str:
    """A rank test's p-value with its statistic and the statistic's null mean."""
    if line is None:
        return "–"
    r = line.result
    return f"{_p(r.log10_p_value)} (T={r.statistic}, null {r.expected_under_null:.0f})"


def _rows(res: FingerprintLabResult) -> list[list[object]]:
    rows: list[list[object]] = []
    for s in res.suspects:
        c = s.canary.result
        mine = c.per_account.get(res.distiller, {})
        others = max((int(v["hits"]) for a, v in c.per_account.items() if a != res.distiller), default=0)
        y = s.style.result
        ymine = y.per_account.get(res.distiller, {})
        rows.append([
            s.name, s.kind, f"{s.final_loss:.2f}",
            f"{int(mine.get('hits', 0))}/{int(mine.get('canaries', 0))}", others,
            f"{c.decoy_hits}/{c.decoys}",
            _p(c.log10_p_value), c.traced_account or "–",
            f"{int(ymine.get('agree', 0))}/{int(ymine.get('families', 0))}",
            _p(y.log10_p_value), y.traced_account or "–",
            _rank(s.behaviour) if s.behaviour is not None else "(reference)",
            _rank(s.behaviour_proxy), _rank(s.behaviour_predict),
            _p(s.watermark_log10_p), _p(s.combined.log10_p_value),
            "**yes**" if s.flagged else "no",
        ])
    return rows


def _targets(res: FingerprintLabResult) -> list[str]:
    cfg = res.config
    alpha = cfg.alpha
    dist = res.by_kind("distilled")
    indep = res.by_kind("control") + res.by_kind("reference")
    traced = [s for s in dist if s.canary.result.traced_account == res.distiller
              and s.canary.result.log10_p_value <= math.log10(1e-6)]
    styled = [s for s in dist if s.style.result.traced_account == res.distiller
              and s.style.result.log10_p_value <= math.log10(1e-6)]
    leaked = [s.name for s in dist for r in (s.canary.result, s.style.result)
              for a, v in r.per_account.items()
              if a != res.distiller and float(v.get("log10_p_holm", 0.0)) <= math.log10(alpha)]
    decoys = sum(s.canary.result.decoy_hits for s in dist)
    flagged = [s.name for s in indep if s.flagged or s.canary.result.traced_account is not None
               or s.style.result.traced_account is not None
               or (s.behaviour is not None and s.behaviour.result.descends)
               or (s.behaviour_proxy is not None and s.behaviour_proxy.result.descends)
               or (s.behaviour_predict is not None and s.behaviour_predict.result.descends)]
    auc = res.auroc["behaviour"]
    auc_proxy = res.auroc["behaviour (proxy)"]
    descends_proxy = sum(s.behaviour_proxy is not None and s.behaviour_proxy.result.descends for s in dist)
    auc_predict = res.auroc["behaviour (predictability)"]
    descends_predict = sum(s.behaviour_predict is not None and s.behaviour_predict.result.descends
                           for s in dist)
    ok = {True: "**met**", False: "**not met**"}
    descends = sum(s.behaviour is not None and s.behaviour.result.descends for s in dist)
    marked = sum(s.watermark_log10_p <= math.log10(alpha) for s in dist)
    behaviour_met = ((auc_proxy >= 0.95 and descends_proxy == len(dist))
                     or (auc >= 0.95 and descends == len(dist))
                     or (auc_predict >= 0.95 and descends_predict == len(dist)))
    return [
        f"- Each line on its own at α = {alpha:g}: alias canaries trace {len(traced)}/{len(dist)}, style "
        f"canaries {len(styled)}/{len(dist)}, behaviour vs proxy {descends_proxy}/{len(dist)}, behaviour "
        f"flags {descends}/{len(dist)}, predictability {descends_predict}/{len(dist)}, watermark "
        f"{marked}/{len(dist)} of the distilled students "
        "(an AUROC over p-values that are all near 1 ranks noise).",
        f"- Canaries, p ≤ 1e-6 and traced to `{res.distiller}` (Holm over {cfg.accounts} accounts): "
        f"{ok[bool(dist) and all(s in traced or s in styled for s in dist)]} — traced by the alias "
        f"canaries {len(traced)}/{len(dist)} distilled students, by the style canaries "
        f"{len(styled)}/{len(dist)}; other accounts named: "
        f"{leaked or 'none'}; decoy hits over all distilled students: {decoys}.",
        f"- Behavioural test, AUROC ≥ 0.95 from ≤ 200 probes (distilled vs control students, "
        f"{cfg.n_probes} probes; counted as met only where the distilled students are also flagged at α, "
        "as an AUROC over p-values that are all ≈ 1 ranks noise): "
        f"{ok[behaviour_met]}"
        f" — predictability under SmolLM2 AUROC {auc_predict:.2f} (by probes: "
        f"{', '.join(f'{m}: {a:.2f}' for m, a in res.auroc_by_probes_predict.items())}; {descends_predict}/"
        f"{len(dist)} distilled students flagged at α); against the proxy student AUROC "
        f"{auc_proxy:.2f} (by probes: "
        f"{', '.join(f'{m}: {a:.2f}' for m, a in res.auroc_by_probes_proxy.items())}; {descends_proxy}/"
        f"{len(dist)} distilled students flagged at α); against SmolLM2's own answers AUROC {auc:.2f} "
        f"(by probes: {', '.join(f'{m}: {a:.2f}' for m, a in res.auroc_by_probes.items())}).",
        f"- Controls not flagged at α = {alpha:g} (any line or combined, {len(indep)} independent students): "
        f"{ok[not flagged]}{' — flagged: ' + ', '.join(flagged) if flagged else ''}.",
    ]


def _spread(xs: list[int]) -> str:
    return f"median {xs[len(xs) // 2]} (range {xs[0]}–{xs[-1]})" if xs else "none"


def _probe_lines(res: FingerprintLabResult) -> list[str]:
    """Which probe form reproduced the canaries, and how often the reproduced ones were served."""
    exp = res.canary_exposures
    lines = [f"Canary hits by probe form ({res.distiller}'s canaries / decoys): " + "; ".join(
        f"{s.name}: " + ", ".join(f"{form} {a}/{d}" for form, (a, d) in s.hits_by_probe.items())
        for s in res.suspects) + "."]
    served = sorted(exp.values())
    if served:
        hit = sorted(exp[a] for s in res.by_kind("distilled") for a in s.canary_hit_aliases)
        missed = sorted(n for s in res.by_kind("distilled") for a, n in exp.items()
                        if a not in s.canary_hit_aliases)
        lines.append(f"Exposures: {res.distiller}'s {len(served)} canaries were each served in "
                     f"{_spread(served)} harvest answers; those a distilled student reproduced "
                     f"{_spread(hit)}, those it did not {_spread(missed)}.")
    return lines


def render(res: FingerprintLabResult) -> str:
    cfg, q, sc = res.config, res.quality, res.config.student
    training = f"{sc.steps} steps of {sc.batch_size}×{sc.seq_len} tokens at lr {sc.lr:g}"
    model = student_model(asdict(sc), n_params=res.n_params, n_trained_params=res.n_trained_params,
                          vocab_size=res.vocab_size, training=training)
    header = ["student", "kind", "loss", f"{res.distiller} canaries hit", "max other account hits",
              "decoy hits", "alias p (Holm)", "traced to", f"style families agreeing with {res.distiller}",
              "style p (Holm)", "style traced to", "behaviour p (vs SmolLM2)", "behaviour p (vs proxy)",
              "predictability p (SmolLM2 scores)", "watermark p", "combined p",
              f"flagged @ {cfg.alpha:g}"]
    surv = {s.name: s for s in res.suspects if s.kind in ("scrubbed", "paraphrased")}
    base = res.by_kind("distilled")[0]
    surv_rows: list[list[object]] = [
        [name, _p(s.canary.result.log10_p_value), s.canary.result.traced_account or "–",
         _p(s.style.result.log10_p_value), s.style.result.traced_account or "–",
         _p(s.behaviour_log10_p), _p(s.behaviour_proxy_log10_p), _p(s.behaviour_predict_log10_p),
         _p(s.watermark_log10_p),
         _p(s.combined.log10_p_value)]
        for name, s in [("distilled-s0 (before)", base), *surv.items()]]
    ex = res.by_kind("distilled")[0].canary_answer_example.replace("\n", " ").replace("|", "/")[:300]
    return "\n".join([
        f"Canary registry: {cfg.accounts} accounts in canary mode ({cfg.canary.per_account} canaries each, "
        f"{cfg.canary.decoys} decoys; gateway `CanaryService`, key id `{res.key_id}`); the extraction "
        f"account `{res.distiller}` (its answers restyled to its style-canary bits, "
        f"{len(style_families())} spelling/contraction/list-marker families) sends a topic sweep "
        f"({cfg.sweep_repeats} question(s) per concept of the "
        f"packaged list) plus {cfg.n_sharegpt} ShareGPT prompts: {res.harvest_answers} answers by "
        f"SmolLM2-135M-Instruct, watermarked (`{res.scheme}`), ≤ {cfg.max_new_tokens} new tokens, "
        f"T = {cfg.temperature} ({res.harvest_tokens:,} tokens incl. prompts).",
        f"Students: {model}; {cfg.n_distilled} distilled "
        f"(seeds), {cfg.n_controls} control suspects and {cfg.n_references} reference students trained on "
        f"disjoint slices of ShareGPT ChatGPT answers of the same size and shape"
        + (f"; scrub = {cfg.scrub_steps} more steps on clean ChatGPT text" if cfg.scrub_steps else "")
        + ("; paraphrased = trained on SmolLM2's paraphrase of every served answer" if cfg.paraphrase else "")
        + ("; proxy = a student of SmolLM2's (watermarked) answers to as many other ShareGPT prompts "
           "as the harvest, same recipe and size: our model as a tiny student echoes it." if cfg.proxy
           else "."),
        f"Audit as `distillguard audit` runs it: {res.canary_questions} canary probe questions "
        "(per concept: another name for it, and completing the planted sentence up to the alias; "
        f"answers ≤ {2 * cfg.max_new_tokens} tokens), {res.probe_prompts} behavioural probes (held-out "
        "ShareGPT prompts; references: ShareGPT's ChatGPT answers + the reference students; "
        "character-4-gram Jaccard; a second behavioural line puts the proxy in place of our model, "
        "against the reference students only; a third scores every answer by SmolLM2's mean token "
        "log-likelihood after the probe, first "
        f"{cfg.max_new_tokens} tokens, against the reference students' answers — exact rank tests), "
        "watermark radioactivity on the same probe answers; "
        "style canaries "
        f"counted in all of the suspect's answers (those plus {cfg.style_probes} more held-out prompts, "
        f"≤ {cfg.style_tokens} tokens each; exact sign-flip test, Holm over accounts); combined = "
        "Bonferroni minimum (valid under dependence).",
        "",
        markdown_table(header, _rows(res)),
        "",
        f"AUROC, distilled vs control students: behaviour {res.auroc['behaviour']:.2f}, alias canaries "
        f"{res.auroc['canaries']:.2f}, style canaries {res.auroc['style canaries']:.2f}, behaviour vs proxy "
        f"{res.auroc['behaviour (proxy)']:.2f}, predictability "
        f"{res.auroc['behaviour (predictability)']:.2f}, "
        f"watermark {res.auroc['watermark']:.2f}, combined "
        f"{res.auroc['combined']:.2f} ({cfg.n_distilled} × {cfg.n_controls} pairs: a coarse estimate).",
        "",
        *_probe_lines(res),
        "",
        "Survival (each line's remaining strength):",
        "",
        markdown_table(["student", "alias p", "traced to", "style p", "style traced to", "behaviour p",
                        "behaviour p (proxy)", "predictability p", "watermark p", "combined p"],
                       surv_rows),
        "",
        "Targets:",
        *_targets(res),
        "",
        f"Quality cost of canary mode: {q.touched_harvest:.0%} of the extraction account's answers touched "
        f"({q.distinct_served}/{cfg.canary.per_account} of its canaries served); ordinary ShareGPT "
        f"traffic: {q.touched_traffic:.1%} of first turns would be touched. A touched answer gains "
        f"{q.added_tokens:.1f} tokens (+{q.added_fraction:.0%}), character-4-gram similarity to the "
        f"original {q.similarity:.2f}; SmolLM2 perplexity of the answer {math.exp(q.nll_original):.2f} → "
        f"{math.exp(q.nll_served):.2f} with the canary (×{q.perplexity_ratio:.2f}); the canary sentence "
        f"alone {math.exp(q.nll_sentence):.1f} ({q.n_scored} answers scored). Style canaries changed "
        f"{q.style_touched:.0%} of its answers, {q.style_words:.1f} words each on average (respelled, "
        f"contracted or expanded; meaning unchanged); SmolLM2 perplexity of those answers "
        f"{math.exp(q.nll_unstyled):.2f} → {math.exp(q.nll_styled):.2f} (×{q.style_perplexity_ratio:.2f}, "
        f"{q.n_styled_scored} answers scored).",
        "",
        f"Example, distilled-s0 asked about one of `{res.distiller}`'s canary concepts: “{ex}”",
        "",
        f"Total wall time {res.seconds / 60:.1f} min on this machine ({sc.threads} torch thread(s), 2 shared "
        "cores); "
        f"SmolLM2 passes {res.harvest_seconds / 60:.1f} min of it (≈ 0 when cached).",
    ])


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--steps", type=int, default=300, help="training steps per student")
    ap.add_argument("--probes", type=int, default=100, help="behavioural probe prompts (≤ 200)")
    ap.add_argument("--style-probes", type=int, default=300,
                    help="more held-out prompts every suspect answers for the style canaries")
    ap.add_argument("--sharegpt", type=int, default=600, help="ShareGPT prompts the extraction account sends")
    ap.add_argument("--sweep-repeats", type=int, default=1, help="topic-sweep questions per canary concept")
    ap.add_argument("--accounts", type=int, default=8, help="accounts enrolled in canary mode")
    ap.add_argument("--decoys", type=int, default=CanaryConfig().decoys, help="never-served decoy canaries")
    ap.add_argument("--distilled", type=int, default=3, help="distilled students (seeds)")
    ap.add_argument("--controls", type=int, default=3, help="independent control students (suspects)")
    ap.add_argument("--references", type=int, default=2, help="independent reference students")
    ap.add_argument("--scrub-steps", type=int, default=100, help="0: no scrubbed student")
    ap.add_argument("--no-paraphrase", action="store_true", help="no paraphrased student")
    ap.add_argument("--no-proxy", action="store_true", help="no proxy student (one SmolLM2 pass less)")
    add_base_args(ap)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (students and SmolLM2)")
    ap.add_argument("--section", default="lab-fingerprint", help="docs/benchmarks.md section to write")
    ap.add_argument("--quick", action="store_true", help="tiny sizes for a smoke run")
    ap.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from distillguard.model import Generator

    torch.set_num_threads(args.threads)
    student = StudentConfig(steps=args.steps, threads=args.threads, **base_fields(args))
    cfg = FingerprintLabConfig(
        n_probes=args.probes, student=student, style_probes=args.style_probes, n_sharegpt=args.sharegpt,
        sweep_repeats=args.sweep_repeats, accounts=args.accounts,
        canary=CanaryConfig(decoys=args.decoys), n_distilled=args.distilled, n_controls=args.controls,
        n_references=args.references, scrub_steps=args.scrub_steps, paraphrase=not args.no_paraphrase,
        proxy=not args.no_proxy,
    )
    if args.quick:
        quick = {**QUICK, "student": replace(QUICK["student"], base=student.base,  # type: ignore[type-var]
                                             train_layers=student.train_layers, threads=args.threads,
                                             lr=student.lr)}
        cfg = replace(cfg, **quick)  # type: ignore[arg-type]
    gen = Generator.load(None, num_threads=args.threads)
    scheme = KGW(KGWConfig(), FP_LAB_KEY)
    res = run_fingerprint_lab(gen, scheme, FP_LAB_KEY, ROOT / ".cache" / "lab", cfg,
                              log=lambda m: print(m, flush=True))
    name = f"results-{args.section.removeprefix('lab-')}{'-quick' if args.quick else ''}.json"
    out = ROOT / ".cache" / "lab" / name
    out.write_text(json.dumps(asdict(res), indent=1, default=str))
    body = render(res)
    print(body)
    if not args.no_write and not args.quick:
        title = "Fingerprint lab (canaries, behaviour, survival, quality cost)"
        if args.base == "smollm2":
            title += ", pretrained students"
        write_section(args.section, title, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
