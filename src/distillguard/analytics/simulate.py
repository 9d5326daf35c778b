"""Labelled synthetic API traffic for tests and benchmarks (``distillguard simulate``).

Benign users replay real ShareGPT conversations with sessions, diurnal cycles and heavy-tailed
volumes; legitimate heavy users are app backends (one narrow template), a HumanEval benchmark
runner and an allowlisted research lab; attackers cover the behaviours in public reports
(fast harvesting, low-and-slow topic sweeps, chain-of-thought elicitation, logprob harvesting,
sybil campaigns, hydra clusters mixing benign prompts in, template paraphrasing). With
``holdout=True`` two attacker variants never used while developing the scorer are added, so a
benchmark can report how an unseen attacker fares. Those two have since been looked at, so
``holdout2=True`` adds a second, independent set (roles ``holdout2_*``) designed without
reference to the scorer: a multi-turn conversation-tree harvester, a replay farm that sends
real ShareGPT prompts round the clock through a residential proxy pool, and a judge/rewrite
campaign that asks for graded critiques and improved answers to real ShareGPT replies. Its
prompts come from ShareGPT conversations after the ones benign users replay, and all of its
random draws come after everyone else's, so turning it on leaves the other accounts' traffic
unchanged. Labels go to a separate CSV.
"""

from __future__ import annotations

import csv
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distillguard.errors import ConfigError

__all__ = ["SimConfig", "SimResult", "simulate"]

_Turns = tuple[tuple[str, str], ...]  # one ShareGPT conversation: (speaker, text) pairs

T0 = 1_769_904_000.0  # 2026-02-01T00:00:00Z
_UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/121.0",
    "Mozilla/5.0 (Macintosh) Safari/17.2",
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/122.0",
    "openai-python/1.12.0",
    "Mozilla/5.0 (iPhone) Mobile",
    "curl/8.4.0",
    "Mozilla/5.0 (Windows NT 10.0) Edg/121.0",
    "node-fetch/3.3",
]
_SUBJECTS = [
    "photosynthesis",
    "quantum tunnelling",
    "the french revolution",
    "binary search trees",
    "monetary policy",
    "protein folding",
    "plate tectonics",
    "the krebs cycle",
    "tcp congestion control",
    "bayesian inference",
    "the roman senate",
    "lithium batteries",
    "compiler optimisation",
    "game theory",
    "the immune system",
    "supply chains",
    "impressionist painting",
    "black holes",
    "contract law",
    "neural networks",
    "volcanoes",
    "organic chemistry",
    "public key cryptography",
    "the cold war",
    "climate feedbacks",
    "graph colouring",
    "kantian ethics",
    "jazz harmony",
    "fluid dynamics",
    "microeconomics",
    "the printing press",
    "enzyme kinetics",
    "sql joins",
    "byzantine fault tolerance",
    "coral reefs",
    "medieval trade",
    "linear algebra",
    "epigenetics",
    "renaissance architecture",
    "rust ownership",
    "string theory",
    "urban planning",
    "sleep science",
]
_ASPECTS = [
    "history",
    "core mechanism",
    "common misconceptions",
    "real world applications",
    "open problems",
    "mathematical model",
    "key experiments",
    "edge cases",
    "comparison with alternatives",
    "teaching it to a beginner",
    "failure modes",
    "recent research",
]
_LEVELS = ["high school", "undergraduate", "graduate", "expert"]

# holdout2: ShareGPT conversations read past the benign pool, for the replay farm and the judges.
_H2_EXTRA = 6000
# holdout2 tree harvester: a plain opening question, then generic follow-ups in the same chat.
_TREE_SEEDS = [
    "What is {s}?",
    "Can you explain {s} to me?",
    "I'm trying to get my head around {s}. Where do I start?",
    "How does {s} actually work?",
    "Why does {s} matter?",
    "Give me an introduction to {s}.",
    "what's the deal with {s}",
]
_TREE_FOLLOW = [
    "Go deeper.",
    "Go deeper on the {aspect}.",
    "Now give me the strongest counter-argument to what you just said.",
    "What would an expert criticise about that explanation?",
    "Walk me through a concrete worked example.",
    "Explain how you got to the last point, one step at a time.",
    "What do people usually get wrong here?",
    "Rewrite all of that for a {level} reader.",
    "Summarise everything so far as a numbered list of key claims.",
    "Which of those claims is least certain, and why?",
    "Compare this with the main alternative.",
    "ok, continue",
    "Can you say more about the {aspect}?",
    "Give me three hard questions on this, with full answers.",
]
# holdout2 judges: grade / compare / critique a real ShareGPT answer, then write a better one.
_JUDGE_TPLS = [
    "You are an expert reviewer. Grade the response below to the user's request on a 1-10 scale "
    "for accuracy, helpfulness, completeness and clarity. Justify each score briefly, then write "
    "an improved response that would score 10.\n\n### Request\n{q}\n\n### Response\n{a}",
    "Which of the two answers better addresses the question? Explain your judgement, name the "
    "winner as [[A]] or [[B]], and then write an answer better than both.\n\nQuestion: {q}\n\n"
    "Answer A: {a}\n\nAnswer B: {b}",
    "Here is a draft written by a junior colleague. List every factual error, omission and unclear "
    "sentence, then give a corrected version.\n\nTask: {q}\n\nDraft: {a}",
    "Evaluate the assistant reply with this rubric and return JSON with keys correctness, "
    "reasoning, style, overall (each 1-5) and rationale. After the JSON, give a reference "
    "answer.\n\nUser: {q}\nAssistant: {a}",
]
_BROWSER_UAS = [u for u in _UAS if u.startswith("Mozilla")]


@dataclass(frozen=True)
class SimConfig:
    """How much traffic of each kind to generate."""

    n_benign: int = 400
    days: float = 7.0
    n_sybil: int = 30
    n_hydra: int = 8
    holdout: bool = False
    # A second held-out attacker set (roles ``holdout2_*``), independent of ``holdout``.
    holdout2: bool = False
    seed: int = 0
    # False: benign users only (no heavy users, no attackers), e.g. to measure false positives.
    attackers: bool = True

    def __post_init__(self) -> None:
        for name in ("n_benign", "n_sybil", "n_hydra"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(
                    f"The '{name}' parameter of SimConfig must be an int >= 0. Got {v!r} instead."
                )
        if not (isinstance(self.days, (int, float)) and 0.5 <= self.days <= 365):
            raise ConfigError(
                f"The 'days' parameter of SimConfig must be in [0.5, 365]. Got {self.days!r} instead."
            )
        if not isinstance(self.holdout2, bool):
            raise ConfigError(
                f"The 'holdout2' parameter of SimConfig must be a bool. Got {self.holdout2!r} instead."
            )


@dataclass
class SimResult:
    """Counts written and the paths."""

    n_events: int
    n_accounts: int
    log_path: Path
    labels_path: Path
    allowlist_path: Path
    roles: dict[str, int] = field(default_factory=dict)


class _Gen:
    def __init__(
        self,
        cfg: SimConfig,
        prompts: list[list[str]],
        bench: list[str],
        full: list[_Turns] | None = None,
        extra: list[_Turns] | None = None,
    ) -> None:
        self.cfg, self.prompts, self.bench = cfg, prompts, bench
        # Whole conversations (``full`` aligned with ``prompts``; ``extra`` never replayed by
        # benign users), only read by the holdout2 attackers.
        self.full, self.extra = full or [], extra or []
        self.next_extra = 0
        self.extra_order: np.ndarray | None = None
        self.rng = np.random.default_rng(cfg.seed)
        self.events: list[dict[str, Any]] = []
        self.labels: list[dict[str, str]] = []
        self.span = cfg.days * 86400.0
        self.order = self.rng.permutation(len(prompts))
        self.next_prompt = 0

    def take(self) -> list[str]:
        # Each real conversation is replayed by one account only: two strangers do not send
        # the same multi-turn conversation, and sharing one would fake a campaign link.
        if self.next_prompt >= len(self.prompts):
            self.next_prompt = 0
        self.next_prompt += 1
        return self.prompts[self.order[self.next_prompt - 1]]

    def ip(self, prefix: str | None = None) -> str:
        r = self.rng.integers(1, 255, size=4)
        return f"{prefix}.{r[3]}" if prefix else f"{r[0]}.{r[1]}.{r[2]}.{r[3]}"

    def topic(self) -> str:
        return f"{self.rng.choice(_SUBJECTS)} ({self.rng.choice(_ASPECTS)})"

    def add(
        self,
        acct: str,
        role: str,
        campaign: str,
        rows: list[tuple[float, str, dict[str, Any]]],
        ip: str,
        ua: str,
        turns: list[int] | None = None,
        ips: list[str] | None = None,
    ) -> None:
        self.labels.append({"account_id": acct, "role": role, "campaign_id": campaign})
        for i, (ts, prompt, params) in enumerate(rows):
            ev: dict[str, Any] = {
                "ts": round(T0 + ts, 3),
                "account_id": acct,
                "ip": ips[i] if ips else ip,
                "user_agent": ua,
                "endpoint": "/v1/chat/completions",
                "model": "dg-large",
            }
            if turns and turns[i] > 1:
                ev["messages"] = [{"role": "user", "content": "(earlier turn)"}] * (turns[i] - 1) + [
                    {"role": "user", "content": prompt}
                ]
            else:
                ev["prompt"] = prompt
            if params:
                ev["params"] = params
            self.events.append(ev)

    def diurnal_times(self, n: int, tz: float) -> np.ndarray:
        # Activity peaks mid-afternoon local time: rejection-sample on a raised cosine.
        out = np.empty(0)
        while out.size < n:
            t = self.rng.uniform(0, self.span, size=2 * n + 8)
            hour = ((t / 3600.0) + tz) % 24
            keep = self.rng.uniform(size=t.size) < 0.15 + 0.85 * (
                0.5 - 0.5 * np.cos((hour - 3) / 24 * 2 * np.pi)
            )
            out = np.concatenate([out, t[keep]])
        return np.sort(out[:n])

    def benign(self, i: int) -> None:
        rng = self.rng
        n_sessions = int(min(60, max(1, rng.lognormal(0.8, 0.9))))
        starts = self.diurnal_times(n_sessions, tz=float(rng.integers(-8, 10)))
        rows, turns = [], []
        for s in starts:
            convo = self.take()
            t = s
            for k, p in enumerate(convo[: int(rng.integers(1, 6))]):
                rows.append((t, p, {"temperature": 0.7} if rng.uniform() < 0.3 else {}))
                turns.append(k + 1)
                t += float(rng.exponential(90)) + 5
        self.add(f"u{i:05d}", "benign", "", rows, self.ip(), str(rng.choice(_UAS)), turns)

    def steady(self, n: int, start: float = 0.0, span: float | None = None) -> np.ndarray:
        span = self.span if span is None else span
        return np.sort(start + self.rng.uniform(0, span, size=n))

    def legit(self) -> None:
        rng = self.rng
        for k in range(2):
            n = int(rng.integers(2500, 4000))
            prods = ["router", "thermostat", "doorbell"]
            issues = ["it will not pair", "battery drains", "app crashes"]
            rows = [
                (
                    float(t),
                    f"Summarize support ticket #{rng.integers(100_000)} about the {rng.choice(prods)} "
                    f'in two sentences: customer says "{rng.choice(issues)}".',
                    {"temperature": 0.2, "max_tokens": 120},
                )
                for t in self.steady(n)
            ]
            self.add(f"app{k}", "app_backend", "", rows, self.ip(), "svc-backend/2.1")
        n_rep = 4
        bench_rows = []
        for _r in range(n_rep):
            t0 = float(rng.uniform(0, self.span - 7200))
            bench_rows += [
                (t0 + j * 2.0, p, {"temperature": 0.0, "max_tokens": 512}) for j, p in enumerate(self.bench)
            ]
        self.add("evalrunner", "benchmark", "", bench_rows, self.ip(), "lm-eval-harness/0.4")
        rows = [
            (
                float(t),
                f"Explain {self.topic()} step by step for a {rng.choice(_LEVELS)} reader.",
                {"temperature": 1.0, "max_tokens": 2048},
            )
            for t in self.steady(1500)
        ]
        self.add("lab-research", "research_lab", "", rows, self.ip(), "lab-evals/1.0")

    def attackers(self) -> None:
        rng, span = self.rng, self.span
        ts = self.steady(5000, float(rng.uniform(0, span - 7200)), 7200)
        self.add(
            "a-fast",
            "naive_fast",
            "",
            [(float(t), f"Explain {self.topic()} in depth, step by step.", {"max_tokens": 4096}) for t in ts],
            self.ip(),
            "python-requests/2.31",
        )
        self.add(
            "a-slow",
            "low_slow",
            "",
            [
                (
                    float(t),
                    f"Write a thorough overview of {self.topic()} for a {rng.choice(_LEVELS)} student.",
                    {},
                )
                for t in self.steady(700)
            ],
            self.ip(),
            str(rng.choice(_UAS)),
        )
        self.add(
            "a-cot",
            "cot",
            "",
            [
                (
                    float(t),
                    f"Question about {self.topic()}: what is the key idea? Think it "
                    "through and show your reasoning before answering.",
                    {},
                )
                for t in self.steady(800)
            ],
            self.ip(),
            str(rng.choice(_UAS)),
        )
        self.add(
            "a-logprob",
            "logprob",
            "",
            [
                (
                    float(t),
                    f"Define {self.topic()} in one paragraph.",
                    {"logprobs": True, "top_logprobs": 20, "max_tokens": 256},
                )
                for t in self.steady(800)
            ],
            self.ip(),
            "openai-python/1.12.0",
        )
        # Sybils: each small and quiet, sharing templates, a /24 and a start hour.
        net, start = (
            f"{rng.integers(11, 200)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}",
            float(rng.uniform(0, span / 2)),
        )
        tpls = [
            "Provide a detailed tutorial on {t}.",
            "List the most important facts about {t} with sources.",
            "Write an exam question and model answer on {t}.",
        ]
        for k in range(self.cfg.n_sybil):
            ts = self.steady(int(rng.integers(25, 45)), start + float(rng.uniform(0, 3600)), span / 2)
            rows: list[tuple[float, str, dict[str, Any]]] = [
                (float(t), str(rng.choice(tpls)).format(t=self.topic()), {}) for t in ts
            ]
            self.add(
                f"s{k:03d}",
                "sybil",
                "camp-sybil",
                rows,
                self.ip(net),
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/122.0",
            )
        # Hydra: proxies mixing benign ShareGPT prompts with extraction prompts.
        for k in range(self.cfg.n_hydra):
            ts = self.steady(int(rng.integers(120, 200)))
            rows = []
            for t in ts:
                if rng.uniform() < 0.5:
                    convo = self.take()
                    rows.append((float(t), convo[0], {}))
                else:
                    rows.append(
                        (
                            float(t),
                            f"As an expert, give a complete answer about {self.topic()}, "
                            "reasoning step by step.",
                            {"max_tokens": 2048},
                        )
                    )
            self.add(f"h{k:03d}", "hydra", "camp-hydra", rows, self.ip(), str(rng.choice(_UAS)))
        openers = [
            "Could you explain",
            "Please describe",
            "I need a clear account of",
            "Tell me about",
            "Give an overview of",
            "Help me understand",
            "Break down",
            "Summarise what is known about",
        ]
        closers = ["", " Be thorough.", " Include examples.", " Make it detailed.", " Use numbered steps."]
        self.add(
            "a-para",
            "paraphrase",
            "",
            [
                (
                    float(t),
                    f"{rng.choice(openers)} {self.topic()}?{rng.choice(closers)} "
                    "Then generate 5 diverse example questions with answers.",
                    {},
                )
                for t in self.steady(900)
            ],
            self.ip(),
            str(rng.choice(_UAS)),
        )
        if self.cfg.holdout:
            self.holdout()
        if self.cfg.holdout2:
            self.holdout2()

    def holdout(self) -> None:
        rng = self.rng
        # Unseen 1: JSON-structured slot filling with a temperature sweep, no cue words.
        self.add(
            "x-json",
            "holdout_json",
            "",
            [
                (
                    float(t),
                    json.dumps({"task": "answer", "topic": self.topic(), "level": str(rng.choice(_LEVELS))}),
                    {"temperature": float(rng.choice([0.0, 0.3, 0.6, 0.9, 1.2]))},
                )
                for t in self.steady(600)
            ],
            self.ip(),
            "httpx/0.27",
        )
        # Unseen 2: a small ring sharing one /24, each account multi-template and slow.
        net = f"{rng.integers(11, 200)}.{rng.integers(0, 255)}.{rng.integers(0, 255)}"
        for k in range(12):
            rows: list[tuple[float, str, dict[str, Any]]] = [
                (float(t), f"For my notes on {self.topic()}, write a Q&A pair with a worked derivation.", {})
                for t in self.steady(int(rng.integers(30, 60)))
            ]
            self.add(f"x-ring{k:02d}", "holdout_ring", "camp-ring", rows, self.ip(net), str(rng.choice(_UAS)))

    def take_convo(self) -> _Turns:
        # holdout2's real conversations: first those no benign user replays (``extra``, in a
        # seeded order), then the unused rest of the benign pool; reuse only when both run out.
        if self.next_extra < len(self.extra):
            if self.extra_order is None:
                self.extra_order = self.rng.permutation(len(self.extra))
            self.next_extra += 1
            return self.extra[self.extra_order[self.next_extra - 1]]
        humans = self.take()
        if self.full:
            return self.full[self.order[self.next_prompt - 1]]
        return tuple(("human", h) for h in humans)

    def holdout2(self) -> None:
        # Every draw here comes after all other accounts' draws: the rest of the log is unchanged.
        rng = self.rng
        if self.extra:
            self.extra_order = rng.permutation(len(self.extra))
        self.h2_tree()
        self.h2_replay()
        self.h2_judges()

    def h2_tree(self) -> None:
        # Held-out 2a, conversation trees: an ordinary opening question, then 3-7 generic
        # follow-ups ("go deeper", "now the counter-argument") in the same chat, sometimes
        # branching (the same history sent again with another follow-up). Batch jobs of 1-3 h;
        # three API keys split the seed list.
        rng = self.rng
        configs: list[dict[str, Any]] = [{}, {"max_tokens": 4096}, {"temperature": 0.8, "max_tokens": 4096}]
        for k in range(3):
            params = configs[int(rng.integers(3))]
            ua = str(rng.choice(["openai-python/1.12.0", "python-httpx/0.27.0", "node-fetch/3.3"]))
            rows: list[tuple[float, str, dict[str, Any]]] = []
            turns: list[int] = []
            for _job in range(int(rng.integers(3, 7))):
                length = float(rng.uniform(3600, 3 * 3600))
                t = float(rng.uniform(0, self.span - length - 1800))
                end = t + length
                while t < end:
                    subject = str(rng.choice(_SUBJECTS))
                    rows.append((t, str(rng.choice(_TREE_SEEDS)).format(s=subject), params))
                    turns.append(1)
                    picks = rng.permutation(len(_TREE_FOLLOW))[: int(rng.integers(3, 8)) + 1]
                    spare = int(picks[-1])
                    for depth, f in enumerate(picks[:-1], start=2):
                        branches = [int(f), spare] if rng.uniform() < 0.25 else [int(f)]
                        for b in branches:
                            t += float(rng.uniform(15, 60))  # the answer streams, then the next turn
                            text = _TREE_FOLLOW[b].format(
                                aspect=rng.choice(_ASPECTS), level=rng.choice(_LEVELS)
                            )
                            rows.append((t, text, params))
                            turns.append(depth)
                    t += float(rng.exponential(60)) + 5
            self.add(f"y-tree{k}", "holdout2_tree", "camp-h2-tree", rows, self.ip(), ua, turns)

    def h2_replay(self) -> None:
        # Held-out 2b, a replay farm: real ShareGPT conversations (every human turn, in order)
        # re-asked to collect this model's answers, round the clock, through a residential proxy
        # pool with sticky sessions (one exit IP per conversation). The texts are human-written;
        # the scale, the flat clock and the rotating exits are not.
        rng = self.rng
        pool = [self.ip() for _ in range(400)]
        configs: list[dict[str, Any]] = [{}, {"max_tokens": 2048}, {"temperature": 0.7}]
        for k in range(4):
            params = configs[int(rng.integers(3))]
            ua = str(rng.choice(["openai-python/1.12.0", "openai-python/1.14.3", *_BROWSER_UAS]))
            target = int(rng.integers(1200, 1800))
            convos: list[list[str]] = []
            total = 0
            while total < target:
                humans = [t for r, t in self.take_convo() if r == "human" and t.strip()][:8]
                if humans:
                    convos.append(humans)
                    total += len(humans)
            rows: list[tuple[float, str, dict[str, Any]]] = []
            turns: list[int] = []
            ips: list[str] = []
            for start, humans in zip(self.steady(len(convos)), convos, strict=True):
                t, exit_ip = float(start), pool[int(rng.integers(len(pool)))]
                for j, text in enumerate(humans):
                    rows.append((t, text, params))
                    turns.append(j + 1)
                    ips.append(exit_ip)
                    t += float(rng.uniform(5, 30))
            self.add(f"y-replay{k}", "holdout2_replay", "camp-h2-replay", rows, ips[0], ua, turns, ips)

    def qa_pair(self) -> tuple[str, str]:
        for _ in range(50):
            convo = self.take_convo()
            for (r1, q), (r2, a) in itertools.pairwise(convo):
                if r1 == "human" and r2 == "gpt" and q.strip() and len(a.strip()) >= 200:
                    return _clip(q.strip(), 1500), _clip(a.strip(), 2000)
        return f"Explain {self.topic()}.", "It depends on several factors. " * 8

    def h2_judges(self) -> None:
        # Held-out 2c, LLM-as-judge harvesting: six accounts, each a plausible office worker (one
        # residential IP, a browser, working hours in the team's time zone, a few sessions a
        # day), ask for grades, critiques and rewrites of real ShareGPT answers: preference and
        # reward-model data plus improved targets. Each member uses two of the four templates;
        # they share one script config.
        rng = self.rng
        tz = float(rng.integers(-8, 10))
        params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 2048}
        for k in range(6):
            tpls = [int(i) for i in rng.choice(len(_JUDGE_TPLS), size=2, replace=False)]
            target = int(rng.integers(150, 350))
            rows: list[tuple[float, str, dict[str, Any]]] = []
            for s in self.diurnal_times(max(1, target // 8), tz):
                t = float(s)
                for _ in range(int(rng.integers(4, 13))):
                    q, a = self.qa_pair()
                    tpl = _JUDGE_TPLS[tpls[int(rng.integers(2))]]
                    b = _degrade(a, rng)
                    if rng.uniform() < 0.5:
                        a, b = b, a
                    rows.append((t, tpl.format(q=q, a=a, b=b), params))
                    t += float(rng.exponential(60)) + 20
            self.add(
                f"y-judge{k:02d}",
                "holdout2_judge",
                "camp-h2-judge",
                rows,
                self.ip(),
                str(rng.choice(_BROWSER_UAS)),
            )


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0]


def _degrade(answer: str, rng: np.random.Generator) -> str:
    # A weaker "student" answer: about 60% of the sentences, in order.
    sents = answer.split(". ")
    keep = [x for x in sents if rng.uniform() < 0.6] or sents[:1]
    return ". ".join(keep)


def simulate(out_dir: Path, cfg: SimConfig | None = None) -> SimResult:
    """Write ``requests.jsonl``, ``labels.csv`` and ``allowlist.txt`` under ``out_dir``."""
    from distillguard.data.corpora import human_eval_prompts, iter_sharegpt

    cfg = cfg or SimConfig()
    n_pool = max(4000, 8 * cfg.n_benign)
    extra_n = _H2_EXTRA if cfg.attackers and cfg.holdout2 else 0
    # iter_sharegpt reads in file order, so the first n_pool are the same with or without extra.
    convos = [c.turns for c in iter_sharegpt(limit=n_pool + extra_n)]
    kept = [(turns, [t for r, t in turns if r == "human" and t.strip()]) for turns in convos[:n_pool]]
    kept = [(turns, p) for turns, p in kept if p]
    prompts = [p for _, p in kept]
    bench = [p["prompt"] for p in human_eval_prompts()]
    g = _Gen(cfg, prompts, bench, full=[turns for turns, _ in kept], extra=convos[n_pool:])
    for i in range(cfg.n_benign):
        g.benign(i)
    if cfg.attackers:
        g.legit()
        g.attackers()
    g.events.sort(key=lambda e: e["ts"])
    out_dir.mkdir(parents=True, exist_ok=True)
    log, labels, allow = out_dir / "requests.jsonl", out_dir / "labels.csv", out_dir / "allowlist.txt"
    with open(log, "w", encoding="utf-8") as fh:
        for ev in g.events:
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["account_id", "role", "campaign_id"])
        w.writeheader()
        w.writerows(g.labels)
    allow.write_text("# declared evaluations (research tier)\nlab-research\n", encoding="utf-8")
    roles: dict[str, int] = {}
    for lab in g.labels:
        roles[lab["role"]] = roles.get(lab["role"], 0) + 1
    return SimResult(len(g.events), len(g.labels), log, labels, allow, roles)
