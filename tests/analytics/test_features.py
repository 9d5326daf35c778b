import duckdb
import pytest

from distillguard.analytics.features import render


def test_both_dialects_render_and_differ_only_in_spelling():
    d, s = render("duckdb"), render("spark")
    assert "regexp_matches" in d.enrich and "rlike" in s.enrich
    assert d.accounts("x") == s.accounts("x")
    with pytest.raises(ValueError, match="dialect"):
        render("oracle")


def test_template_signature_ignores_slot_and_numbers():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE req (account_id VARCHAR, ts DOUBLE, prompt VARCHAR, n_turns BIGINT, ip VARCHAR, "
        "user_agent VARCHAR, temperature DOUBLE, max_tokens BIGINT, logprobs BOOLEAN, top_logprobs BIGINT)"
    )
    prompts = [
        "Write a thorough overview of black holes for a graduate student.",
        "Write a thorough overview of jazz harmony for a high school student.",
        "Explain order 1234 step by step please, with all details included",
        "Explain order 99 step by step please, with all details included",
    ]
    for i, p in enumerate(prompts):
        con.execute(
            "INSERT INTO req VALUES ('a', ?, ?, 1, '10.1.2.3', 'ua', NULL, 4096, NULL, 3)", [float(i), p]
        )
    rows = con.execute(render("duckdb").enrich).fetchall()
    cols = [c[0] for c in con.description]
    r = [dict(zip(cols, x, strict=True)) for x in rows]
    assert r[0]["tpl_p"] == r[1]["tpl_p"] and r[0]["tpl_s"] != r[1]["tpl_s"]
    assert r[2]["body"] == r[3]["body"]  # digits masked
    assert [x["cot"] for x in r] == [0, 0, 1, 1]
    assert all(x["lp_req"] == 1 and x["long_out"] == 1 and x["ip24"] == "10.1.2" for x in r)
