import math

import duckdb
import pytest

from distillguard.analytics.campaigns import find_candidates
from distillguard.analytics.engines import ENRICHED
from distillguard.analytics.features import HEAD_CHARS, render

_COLS = (
    "account_id VARCHAR, ts DOUBLE, prompt VARCHAR, n_turns BIGINT, ip VARCHAR, user_agent VARCHAR, "
    "temperature DOUBLE, max_tokens BIGINT, logprobs BOOLEAN, top_logprobs BIGINT, topic BIGINT"
)


def _enrich(rows, bench=()):
    """Run the DuckDB enrichment over (account, ts, prompt[, topic]) rows; return dicts."""
    con = duckdb.connect()
    con.execute(f"CREATE TABLE req ({_COLS})")
    for r in rows:
        acct, ts, prompt, topic = (*r, None)[:4]
        con.execute(
            "INSERT INTO req VALUES (?, ?, ?, 1, '10.1.2.3', 'ua', NULL, 4096, NULL, 3, ?)",
            [acct, float(ts), prompt, topic],
        )
    q = render("duckdb")
    con.execute("CREATE TABLE bench (prompt VARCHAR)")
    for b in bench:
        con.execute("INSERT INTO bench VALUES (?)", [b])
    con.execute(f"CREATE TABLE bench_k AS {q.bench_keys}")
    con.execute("CREATE TABLE enriched AS " + ENRICHED.format(enrich=q.enrich))
    cur = con.execute("SELECT * FROM enriched ORDER BY ts")
    cols = [c[0] for c in cur.description]
    out = [dict(zip(cols, x, strict=True)) for x in cur.fetchall()]
    cur = con.execute(q.accounts("enriched"))
    cols = [c[0] for c in cur.description]
    accts = {x[0]: dict(zip(cols, x, strict=True)) for x in cur.fetchall()}
    return out, accts


def test_both_dialects_render_and_differ_only_in_spelling():
    d, s = render("duckdb"), render("spark")
    assert "regexp_matches" in d.enrich and "rlike" in s.enrich
    # The aggregation is the same text but for DuckDB's hint not to copy the source relation.
    assert d.accounts("x").replace("NOT MATERIALIZED ", "") == s.accounts("x")
    assert "NOT MATERIALIZED" in d.accounts("x") and "MATERIALIZED" not in s.accounts("x")
    with pytest.raises(ValueError, match="dialect"):
        render("oracle")


def test_template_signature_ignores_slot_and_numbers():
    r, _ = _enrich(
        [
            ("a", 0, "Write a thorough overview of black holes for a graduate student."),
            ("a", 1, "Write a thorough overview of jazz harmony for a high school student."),
            ("a", 2, "Explain order 1234 step by step please, with all details included"),
            ("a", 3, "Explain order 99 step by step please, with all details included"),
        ]
    )
    assert r[0]["tpl_p"] == r[1]["tpl_p"] and r[0]["tpl_s"] != r[1]["tpl_s"]
    assert r[2]["body"] == r[3]["body"]  # digits masked
    assert [x["cot"] for x in r] == [0, 0, 1, 1]
    assert all(x["lp_req"] == 1 and x["long_out"] == 1 and x["ip24"] == "10.1.2" for x in r)


def test_cjk_and_cyrillic_prompts_get_template_signatures():
    r, _ = _enrich(
        [
            ("a", 0, "请详细解释光合作用的原理，并给出三个例子。"),
            ("a", 1, "请详细解释量子隧穿效应的原理，并给出三个例子。"),
            ("a", 2, "日本の歴史について詳しく説明してください。"),
            ("a", 3, "Объясни подробно, как работает фотосинтез в растениях и почему"),
            ("a", 4, "Объясни подробно, как работает квантовое туннелирование и почему"),
            ("a", 5, "请一步一步地推理：光合作用需要哪些条件？请给出详细的答案。"),
        ]
    )
    assert all(x["tpl_p"] is not None for x in r)
    assert r[0]["tpl_p"] == r[1]["tpl_p"] and r[0]["tpl_s"] == r[1]["tpl_s"]  # same frame, other slot
    assert r[0]["body"] != r[1]["body"] and r[0]["tpl_p"] != r[2]["tpl_p"]
    assert r[3]["tpl_p"] == r[4]["tpl_p"] != r[0]["tpl_p"]
    assert r[5]["cot"] == 1  # "一步一步": step by step


def test_benchmark_prompts_recognised_verbatim_and_behind_an_instruction():
    from distillguard.data.corpora import human_eval_prompts

    he = [p["prompt"] for p in human_eval_prompts()]
    r, accts = _enrich(
        [
            ("e", 0, he[0]),
            ("e", 1, "Complete the following Python function. Return only code.\n\n" + he[1]),
            ("e", 2, he[2].upper()[:40]),  # a fragment is not the benchmark
            ("e", 3, "Write a poem about the sea, in the style of a sonnet, fourteen lines."),
        ],
        bench=he,
    )
    assert [x["is_bench"] for x in r] == [1, 1, 0, 0]
    assert accts["e"]["bench_share"] == 0.5


def test_long_prompts_are_read_at_both_ends():
    filler = "lorem ipsum dolor " * 2000
    head, tail = "Summarise this report for me please now: ", " Think it through step by step."
    r, _ = _enrich([("a", 0, head + filler + tail), ("a", 1, head + filler[:-7] + tail)])
    assert len(filler) > 4 * HEAD_CHARS
    assert r[0]["cot"] == 1 and r[0]["tpl_p"] == r[1]["tpl_p"] and r[0]["tpl_s"] == r[1]["tpl_s"]


def test_timing_and_topic_features():
    day = 86400.0
    rows = [("bot", 1_769_904_000 + 600.0 * i, f"request {i}") for i in range(7 * 144)]  # every 10 min
    rng_ts = [
        1_769_904_000 + d * day + 13 * 3600 + 97.0 * j * j for d in range(7) for j in range(12)
    ]  # afternoons only, bursty
    rows += [("human", t, f"question {i}", i % 2) for i, t in enumerate(rng_ts)]
    rows += [("sweeper", 1_769_904_000 + 3600.0 * i, f"topic {i}", i % 40) for i in range(80)]
    _, a = _enrich(rows)
    bot, human, sweep = a["bot"], a["human"], a["sweeper"]
    assert bot["n_regular"] == bot["n_requests"] - 1 and bot["burstiness"] == pytest.approx(-1.0)
    assert bot["diurnal_strength"] < 0.01 and human["diurnal_strength"] > 0.8
    assert bot["n_offhours"] == pytest.approx(bot["n_requests"] / 3, rel=0.02)
    assert human["n_offhours"] == 0 and human["burstiness"] > 0 and human["n_regular"] < 10
    assert sweep["n_topics"] == 40 and sweep["n_offtopic"] == 80 - 6
    assert human["n_topics"] == 2 and human["n_offtopic"] == 0 and bot["n_topics"] == 0
    assert math.isclose(sweep["gap_cv"], 0.0, abs_tol=1e-9)


def test_temperature_sweep_counts_requests_off_the_accounts_usual_setting():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE req ({_COLS})")
    sweep = [0.0, 0.3, 0.6, 0.9, 1.2]
    rows = [("sweeper", i, sweep[i % 5]) for i in range(50)]
    rows += [("person", i, 0.7 if i % 3 == 0 else None) for i in range(30)]  # sometimes sets 0.7
    rows += [("backend", i, 0.2) for i in range(40)]
    for acct, ts, temp in rows:
        con.execute(
            "INSERT INTO req VALUES (?, ?, ?, 1, '10.1.2.3', 'ua', ?, NULL, NULL, NULL, NULL)",
            [acct, float(ts), f"prompt {ts}", temp],
        )
    q = render("duckdb")
    con.execute("CREATE TABLE bench (prompt VARCHAR)")
    con.execute(f"CREATE TABLE bench_k AS {q.bench_keys}")
    con.execute("CREATE TABLE enriched AS " + ENRICHED.format(enrich=q.enrich))
    cur = con.execute(q.accounts("enriched"))
    cols = [c[0] for c in cur.description]
    a = {x[0]: dict(zip(cols, x, strict=True)) for x in cur.fetchall()}
    assert a["sweeper"]["n_offtemp"] == 40 and a["sweeper"]["n_temperatures"] == 5
    assert a["person"]["n_offtemp"] == 10  # unset is the usual setting; 0.7 the other
    assert a["backend"]["n_offtemp"] == 0


def test_links_keep_only_values_two_accounts_share():
    # Four ring accounts share a template and a /24 + user agent; each loner has its own.
    rows = [(f"r{i}", "T1", "10.0.0", "bot/1") for i in range(4) for _ in range(2)]
    rows += [(f"l{i}", f"own{i}", f"20.0.{i}", f"Browser/{i}") for i in range(6) for _ in range(2)]
    rows += [("r0", "T2", "10.0.0", "bot/1")]  # a template used once links nothing
    con = duckdb.connect()
    con.execute("CREATE TABLE enriched (account_id VARCHAR, tpl_p VARCHAR, ip24 VARCHAR, user_agent VARCHAR)")
    con.executemany("INSERT INTO enriched VALUES (?, ?, ?, ?)", rows)
    cur = con.execute(render("duckdb").links)
    cols = [c[0] for c in cur.description]
    links = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    assert {r["account_id"] for r in links} == {f"r{i}" for i in range(4)}
    assert {(r["kind"], r["value"]) for r in links} == {("tpl", "T1"), ("ip24", "10.0.0"), ("ua", "bot/1")}
    # Dropping the values one account holds changes no campaign.
    every = [
        {"account_id": a, "kind": k, "value": v, "c": 2}
        for a, t, ip, ua in set(rows) if (a, t) != ("r0", "T2")
        for k, v in (("tpl", t), ("ip24", ip), ("ua", ua))
    ]
    assert find_candidates(links, 100) == find_candidates(every, 100)
    assert find_candidates(links, 100)[0].accounts == ("r0", "r1", "r2", "r3")
