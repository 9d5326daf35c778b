"""The feature description: ONE set of SQL queries, spelled for DuckDB or Spark SQL.

Both engines run exactly these queries; only a few function spellings differ between the
dialects (global regexp replace, regexp match, Unicode classes in a string literal, the
backreference in a replacement), so :func:`render` fills them in.

Per request (enrichment), on the prompt's first and last :data:`HEAD_CHARS` characters (the
framing of a template and the cue words live at the ends; a pasted document in the middle
changes nothing and would dominate the cost): a normalised text (lower case, quoted strings →
``q``, digit runs → ``#``, each Han / kana character a token of its own because those scripts
do not separate words, everything that is not a letter, mark or digit → one space); template
signatures = hashes of its first and last :data:`TEMPLATE_WORDS` tokens (an extraction template
keeps its framing and varies a slot); a body hash (near-exact duplicates); a tail hash (a known
benchmark prompt behind an added instruction); chain-of-thought and "many diverse examples"
cues; logprob / long-output / sampling-parameter use; the hour-of-day as a point on the unit
circle; the client's /24 prefix; the topic cluster (filled in only with sentence embeddings).
The text features depend on the staged prompt alone, so they are computed once per distinct
prompt and joined back (the same values as per request; repeated prompts cost one join probe).

Per account: the features listed in :data:`ACCOUNT_FEATURES`. Pure: strings only.
"""

# ruff: noqa: E501 - SQL / HTML text reads better unwrapped than split across string literals

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCOUNT_FEATURES", "DIALECTS", "HEAD_CHARS", "FeatureQueries", "render"]

DIALECTS = ("duckdb", "spark")
# Only the first and last HEAD_CHARS characters of a prompt are analysed.
HEAD_CHARS = 256

# Chain-of-thought elicitation and bulk "diverse examples" requests (English cues).
COT_PATTERN = (
    "step by step|step-by-step|chain of thought|show your (work|reasoning)|explain your "
    "reasoning|think (it )?through|reason carefully|walk me through|justify each step|"
    "paso a paso|étape par étape|schritt für schritt|шаг за шагом|一步一步|逐步|分步|ステップバイステップ"
)
DIVERSE_PATTERN = (
    "(generate|write|give|list|produce|create) (me )?(#|many|multiple|several|a list of|"
    "diverse|varied|different)[a-z ]{0,30}(examples|questions|samples|problems|prompts|"
    "responses|variations|pairs)|as diverse as possible|cover (all|every|many) (topics|areas)"
)
TEMPLATE_WORDS = 4
# A template signature is the first (or last) TEMPLATE_WORDS words of a prompt of at least
# 2 * TEMPLATE_WORDS - 1 words: extraction templates keep their framing and vary a slot.
_W = " ".join(["[^ ]+"] * TEMPLATE_WORDS)
_REST = " [^ ]+" * (TEMPLATE_WORDS - 1)
# Templates are only counted on prompts with at least this much normalised text: "hi" and
# "continue" are shared by everyone and prove nothing.
MIN_TEMPLATE_TEXT = 24
# The normalised tail that identifies a benchmark prompt behind an added instruction.
BENCH_TAIL_CHARS = 64

# name -> what it measures (the scorer decides which are evidence of extraction)
ACCOUNT_FEATURES: dict[str, str] = {
    "n_requests": "requests in the window",
    "peak_hour": "most requests in any clock hour",
    "span_hours": "hours between first and last request",
    "n_reused": "templated prompts that repeat a template (prefix or suffix signature) the "
    "account already used",
    "n_templates": "distinct templates among templated prompts",
    "distinct_ratio": "distinct normalised prompts / requests",
    "n_cot": "prompts asking for step-by-step reasoning",
    "n_diverse": "prompts asking for many diverse examples",
    "n_logprob": "requests asking for logprobs",
    "n_long": "requests with max_tokens >= 2048",
    "n_temperatures": "distinct temperatures used",
    "n_offtemp": "requests at a temperature other than the account's most used one (unset counts "
    "as a setting of its own): a temperature sweep harvests varied answers to one prompt set",
    "single_turn_share": "share of requests that are single-turn",
    "gap_cv": "coefficient of variation of inter-arrival gaps (low = machine-regular)",
    "burstiness": "(sd - mean) / (sd + mean) of inter-arrival gaps: -1 periodic, 0 Poisson, "
    "toward 1 bursty (Goh & Barabasi)",
    "n_regular": "inter-arrival gaps within 10% of the account's mean gap (metronome timing)",
    "diurnal_strength": "length of the mean hour-of-day vector: 0 round the clock, 1 one hour",
    "n_offhours": "requests in the 8 hours opposite the account's own activity peak (when a "
    "person sleeps)",
    "n_topics": "distinct topic clusters (sentence embeddings; 0 without --embeddings)",
    "n_offtopic": "requests outside the account's 3 most used topic clusters",
    "bench_share": "share of prompts that are known benchmark prompts (e.g. HumanEval), "
    "verbatim or behind an added instruction",
    "first_ts": "first request (epoch s)",
}


@dataclass(frozen=True)
class FeatureQueries:
    """Queries for one dialect. ``accounts(src)`` aggregates the relation ``src``.

    ``enrich`` reads relation ``req`` (the staged columns); ``bench_keys`` reads ``bench``
    (column ``prompt``) and yields ``kind`` ('body' or 'tail') and ``k`` (the hash).
    """

    enrich: str
    links: str
    bench_keys: str
    accounts_template: str

    def accounts(self, src: str) -> str:
        """Return the per-account aggregation over relation ``src`` (an enriched relation)."""
        return self.accounts_template.replace("{src}", src)


def _spell(dialect: str) -> tuple[str, str, str]:
    # (backslash as written in a string literal, Han/kana class, backreference to group 1)
    if dialect == "duckdb":  # RE2; DuckDB string literals keep backslashes as they are
        return "\\", "\\p{Han}\\p{Hiragana}\\p{Katakana}", "\\1"
    # Java regex; Spark SQL string literals unescape one level of backslashes
    return "\\\\", "\\\\p{IsHan}\\\\p{IsHiragana}\\\\p{IsKatakana}", "$1"


def _rr(x: str, pat: str, rep: str, dialect: str) -> str:
    return (
        f"regexp_replace({x}, '{pat}', '{rep}', 'g')"
        if dialect == "duckdb"
        else f"regexp_replace({x}, '{pat}', '{rep}')"
    )


def _ends(col: str) -> str:
    """The analysed text: the whole prompt, or its first and last HEAD_CHARS characters."""
    h = HEAD_CHARS
    return f"CASE WHEN length({col}) > {2 * h} THEN concat(left({col}, {h}), ' ', right({col}, {h})) ELSE {col} END"


def _norm(col: str, dialect: str) -> str:
    bs, cjk, ref = _spell(dialect)
    x = _rr(_rr(f"lower({col})", '"[^"]*"', " q ", dialect), "[0-9]+", "#", dialect)
    x = _rr(x, f"([{cjk}])", f" {ref} ", dialect)
    # Every maximal run of non-word characters becomes one space. Written so that a run that
    # already is one space does not match (most of them): same result, half the regex time.
    nw = f"[^{bs}p{{L}}{bs}p{{M}}{bs}p{{N}}#"
    x = _rr(x, f" ?{nw} ]{nw}]*| {{2,}}{nw}]*", " ", dialect)
    return f"trim({x})"


def _match(x: str, pat: str, dialect: str) -> str:
    return f"regexp_matches({x}, '{pat}')" if dialect == "duckdb" else f"rlike({x}, '{pat}')"


def _flag(cond: str) -> str:
    return f"CASE WHEN {cond} THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END"


def render(dialect: str) -> FeatureQueries:
    """Return the queries spelled for ``dialect`` (``duckdb`` or ``spark``).

    Raises:
        ValueError: unknown dialect.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"The 'dialect' parameter must be one of {DIALECTS}. Got {dialect!r} instead.")
    W5P = f"regexp_extract(norm, '^({_W}){_REST}', 1)"
    W5S = f"regexp_extract(norm, '^[^ ]+{_REST} (.*[^ ]+ )?({_W})$', 2)"
    # Text features are computed once per distinct staged prompt and joined back: real logs
    # repeat prompts a lot (templates, retries, shared benchmarks), and the regular expressions
    # are most of the cost. Same for the /24 prefix per distinct client address.
    enrich = f"""
WITH txt AS (
  SELECT prompt,
    CASE WHEN length(norm) >= {MIN_TEMPLATE_TEXT} AND wp <> '' THEN md5(wp) END AS tpl_p,
    CASE WHEN length(norm) >= {MIN_TEMPLATE_TEXT} AND ws <> '' THEN md5(ws) END AS tpl_s,
    md5(norm) AS body,
    md5(right(norm, {BENCH_TAIL_CHARS})) AS btail,
    {_flag(_match("lp", COT_PATTERN, dialect))} AS cot,
    {_flag(_match("norm", DIVERSE_PATTERN, dialect))} AS diverse
  FROM (SELECT *, {W5P} AS wp, {W5S} AS ws FROM
    (SELECT *, {_norm("lp", dialect)} AS norm FROM
      (SELECT prompt, lower({_ends("prompt")}) AS lp FROM (SELECT DISTINCT prompt FROM req) d0) r2) r1) r0
), ips AS (
  SELECT ip, regexp_extract(ip, '^([0-9]+[.][0-9]+[.][0-9]+)[.]', 1) AS ip24
  FROM (SELECT DISTINCT ip FROM req WHERE ip IS NOT NULL) d1
)
SELECT r.account_id, r.ts, r.n_turns, r.ip, r.user_agent, r.topic,
  t.tpl_p, t.tpl_s, t.body, t.btail, t.cot, t.diverse,
  {_flag("coalesce(r.logprobs, false) OR coalesce(r.top_logprobs, 0) > 0")} AS lp_req,
  {_flag("coalesce(r.max_tokens, 0) >= 2048")} AS long_out,
  r.temperature,
  cos(2 * pi() * (r.ts % 86400) / 86400) AS hx,
  sin(2 * pi() * (r.ts % 86400) / 86400) AS hy,
  coalesce(i.ip24, '') AS ip24
FROM req r JOIN txt t ON r.prompt = t.prompt LEFT JOIN ips i ON r.ip = i.ip
"""
    nb = _norm(_ends("prompt"), dialect)
    bench = (
        f"SELECT DISTINCT 'body' AS kind, md5({nb}) AS k FROM bench UNION ALL "
        f"SELECT DISTINCT 'tail' AS kind, md5(right({nb}, {BENCH_TAIL_CHARS})) AS k FROM bench "
        f"WHERE length({nb}) >= {BENCH_TAIL_CHARS}"
    )
    # DuckDB materialises a CTE read several times; ``e`` is only a name for ``src`` (already a
    # table), so copying it cost as much as the whole aggregation at 10M rows. Spark inlines it.
    hint = "NOT MATERIALIZED " if dialect == "duckdb" else ""
    return FeatureQueries(
        enrich=enrich, links=_LINKS, bench_keys=bench, accounts_template=_ACCOUNTS.replace("{hint}", hint)
    )


# Shared by both dialects (standard SQL both accept). {src} is an enriched relation with an
# is_bench column (1.0 when the body hash is a known benchmark prompt). Timing (``tw``, ``timing``)
# is one pass over the rows: each request's gap to the previous one, and the account's mean gap
# and mean hour vector as window aggregates over the same partition, rather than joins of every
# request back to per-account aggregates.
_ACCOUNTS = """
WITH e AS {hint}(SELECT * FROM {src}),
tw AS (SELECT account_id, gap, hx, hy,
         avg(gap) OVER (PARTITION BY account_id) AS gm,
         avg(hx) OVER (PARTITION BY account_id) AS cx,
         avg(hy) OVER (PARTITION BY account_id) AS cy
       FROM (SELECT account_id, hx, hy, ts - lag(ts) OVER (PARTITION BY account_id ORDER BY ts) AS gap
             FROM e) g0),
timing AS (SELECT account_id, max(gm) AS gm, stddev_samp(gap) AS gsd,
             sum(CASE WHEN gm > 0 AND abs(gap - gm) <= 0.1 * gm THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS n_regular,
             sum(CASE WHEN hx * cx + hy * cy < -0.5 * sqrt(cx * cx + cy * cy)
                 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS n_offhours
           FROM tw GROUP BY account_id),
hours AS (SELECT account_id, max(c) AS peak_hour FROM
          (SELECT account_id, floor(ts / 3600) AS h, count(*) AS c FROM e GROUP BY account_id, floor(ts / 3600)) h0
          GROUP BY account_id),
tp AS (SELECT account_id, tpl_p AS t, count(*) AS c FROM e WHERE tpl_p IS NOT NULL GROUP BY account_id, tpl_p),
tsf AS (SELECT account_id, tpl_s AS t, count(*) AS c FROM e WHERE tpl_s IS NOT NULL GROUP BY account_id, tpl_s),
tpr AS (SELECT account_id, count(*) AS np_, sum(c) AS nt FROM tp GROUP BY account_id),
tsr AS (SELECT account_id, count(*) AS ns_, sum(c) AS nts FROM tsf GROUP BY account_id),
tmode AS (SELECT account_id, max(c) AS c_mode FROM
          (SELECT account_id, count(*) AS c FROM e GROUP BY account_id, coalesce(temperature, -1.0)) m0
          GROUP BY account_id),
tc AS (SELECT account_id, topic, count(*) AS c FROM e WHERE topic IS NOT NULL GROUP BY account_id, topic),
tk AS (SELECT account_id, c, row_number() OVER (PARTITION BY account_id ORDER BY c DESC, topic) AS rk FROM tc),
tt AS (SELECT account_id, count(*) AS n_topics,
          sum(CASE WHEN rk > 3 THEN c ELSE 0 END) AS n_offtopic FROM tk GROUP BY account_id),
base AS (SELECT account_id, count(*) AS n_requests, (max(ts) - min(ts)) / 3600.0 AS span_hours,
           min(ts) AS first_ts, count(DISTINCT body) AS n_bodies, sum(cot) AS n_cot,
           sum(diverse) AS n_diverse, sum(lp_req) AS n_logprob, sum(long_out) AS n_long,
           count(DISTINCT temperature) AS n_temperatures,
           avg(CASE WHEN n_turns <= 1 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS single_turn_share,
           avg(is_bench) AS bench_share, avg(hx) AS cx, avg(hy) AS cy
         FROM e GROUP BY account_id)
SELECT b.account_id, b.n_requests, h.peak_hour, b.span_hours, b.first_ts,
  greatest(coalesce(tpr.nt - tpr.np_, 0), coalesce(tsr.nts - tsr.ns_, 0)) AS n_reused,
  coalesce(tpr.np_, 0) AS n_templates,
  CAST(b.n_bodies AS DOUBLE) / b.n_requests AS distinct_ratio,
  b.n_cot, b.n_diverse, b.n_logprob, b.n_long, b.n_temperatures,
  b.n_requests - tmo.c_mode AS n_offtemp,
  b.single_turn_share, b.bench_share,
  CASE WHEN tm.gm > 0 THEN coalesce(tm.gsd, 0) / tm.gm END AS gap_cv,
  CASE WHEN tm.gm > 0 THEN (coalesce(tm.gsd, 0) - tm.gm) / (coalesce(tm.gsd, 0) + tm.gm) END AS burstiness,
  tm.n_regular,
  sqrt(b.cx * b.cx + b.cy * b.cy) AS diurnal_strength,
  tm.n_offhours,
  coalesce(tt.n_topics, 0) AS n_topics,
  coalesce(tt.n_offtopic, 0) AS n_offtopic
FROM base b JOIN hours h ON b.account_id = h.account_id
JOIN timing tm ON b.account_id = tm.account_id
JOIN tmode tmo ON b.account_id = tmo.account_id
LEFT JOIN tpr ON b.account_id = tpr.account_id
LEFT JOIN tsr ON b.account_id = tsr.account_id
LEFT JOIN tt ON b.account_id = tt.account_id
ORDER BY b.account_id
"""

# Evidence that can link accounts into a campaign: templates each account used at least twice,
# and the account's /24 prefixes and user agents; only values that two or more accounts share
# (a value one account alone holds links nothing, and most client addresses and user agents are
# such: sending them to the driver was most of the linking cost).
_LINKS = """
SELECT account_id, kind, value, c FROM (
  SELECT *, count(*) OVER (PARTITION BY kind, value) AS n_accounts FROM (
    SELECT account_id, 'tpl' AS kind, tpl_p AS value, count(*) AS c FROM enriched
      WHERE tpl_p IS NOT NULL GROUP BY account_id, tpl_p HAVING count(*) >= 2
    UNION ALL
    SELECT account_id, 'ip24' AS kind, ip24 AS value, count(*) AS c FROM enriched
      WHERE ip24 IS NOT NULL AND ip24 <> '' GROUP BY account_id, ip24
    UNION ALL
    SELECT account_id, 'ua' AS kind, user_agent AS value, count(*) AS c FROM enriched
      WHERE user_agent IS NOT NULL GROUP BY account_id, user_agent
  ) l0
) l1 WHERE n_accounts >= 2
"""
