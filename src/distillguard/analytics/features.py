"""The feature description: ONE set of SQL queries, spelled for DuckDB or Spark SQL.

Both engines run exactly these queries; only three function spellings differ between the
dialects (global regexp replace, regexp match), so :func:`render` fills them in. Patterns avoid
backslashes because Spark and DuckDB treat them differently inside string literals.

Per request (enrichment): a normalised text (lower case, quoted strings → ``q``, digit runs →
``#``, everything else non-alphanumeric → one space); template signatures = hashes of its first
and last 32 characters (an extraction template keeps its framing and varies a slot); a body
hash (exact/near-exact duplicates after normalisation); chain-of-thought and "many diverse
examples" cues; logprob / long-output / sampling-parameter use; the client's /24 prefix.

Per account: the features listed in :data:`ACCOUNT_FEATURES`. Pure: strings only.
"""

# ruff: noqa: E501 - SQL / HTML text reads better unwrapped than split across string literals

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ACCOUNT_FEATURES", "DIALECTS", "FeatureQueries", "render"]

DIALECTS = ("duckdb", "spark")

# Chain-of-thought elicitation and bulk "diverse examples" requests (English cues).
COT_PATTERN = (
    "step by step|step-by-step|chain of thought|show your (work|reasoning)|explain your "
    "reasoning|think (it )?through|reason carefully|walk me through|justify each step"
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
    "single_turn_share": "share of requests that are single-turn",
    "gap_cv": "coefficient of variation of inter-arrival gaps (low = machine-regular)",
    "bench_share": "share of prompts that are known benchmark prompts (e.g. HumanEval)",
    "first_ts": "first request (epoch s)",
}


@dataclass(frozen=True)
class FeatureQueries:
    """Queries for one dialect. ``accounts(src)`` aggregates the relation ``src``."""

    enrich: str
    links: str
    bench_hashes: str

    def accounts(self, src: str) -> str:
        """Return the per-account aggregation over relation ``src`` (an enriched relation)."""
        return _ACCOUNTS.replace("{src}", src)


def _norm(col: str, dialect: str) -> str:
    def rr(x: str, pat: str, rep: str) -> str:
        return (
            f"regexp_replace({x}, '{pat}', '{rep}', 'g')"
            if dialect == "duckdb"
            else f"regexp_replace({x}, '{pat}', '{rep}')"
        )

    inner = rr(rr(f"lower({col})", '"[^"]*"', " q "), "[0-9]+", "#")
    return f"trim({rr(inner, '[^a-z0-9#]+', ' ')})"


def _match(x: str, pat: str, dialect: str) -> str:
    return f"regexp_matches({x}, '{pat}')" if dialect == "duckdb" else f"rlike({x}, '{pat}')"


def render(dialect: str) -> FeatureQueries:
    """Return the queries spelled for ``dialect`` (``duckdb`` or ``spark``).

    Raises:
        ValueError: unknown dialect.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"The 'dialect' parameter must be one of {DIALECTS}. Got {dialect!r} instead.")
    W5P = f"regexp_extract(norm, '^({_W}){_REST}', 1)"
    W5S = f"regexp_extract(norm, '^[^ ]+{_REST} (.*[^ ]+ )?({_W})$', 2)"
    enrich = f"""
SELECT account_id, ts, n_turns, ip, user_agent,
  CASE WHEN length(norm) >= {MIN_TEMPLATE_TEXT} AND {W5P} <> '' THEN md5({W5P}) END AS tpl_p,
  CASE WHEN length(norm) >= {MIN_TEMPLATE_TEXT} AND {W5S} <> '' THEN md5({W5S}) END AS tpl_s,
  md5(norm) AS body,
  CASE WHEN {_match("lp", COT_PATTERN, dialect)} THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS cot,
  CASE WHEN {_match("norm", DIVERSE_PATTERN, dialect)} THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS diverse,
  CASE WHEN coalesce(logprobs, false) OR coalesce(top_logprobs, 0) > 0 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS lp_req,
  CASE WHEN coalesce(max_tokens, 0) >= 2048 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END AS long_out,
  temperature,
  regexp_extract(coalesce(ip, ''), '^([0-9]+[.][0-9]+[.][0-9]+)[.]', 1) AS ip24
FROM (SELECT *, lower(prompt) AS lp, {_norm("prompt", dialect)} AS norm FROM req) r0
"""
    bench = f"SELECT DISTINCT md5({_norm('prompt', dialect)}) AS body FROM bench"
    return FeatureQueries(enrich=enrich, links=_LINKS, bench_hashes=bench)


# Shared by both dialects (standard SQL both accept). {src} is an enriched relation with an
# is_bench column (1.0 when the body hash is a known benchmark prompt).
_ACCOUNTS = """
WITH e AS (SELECT * FROM {src}),
gaps AS (SELECT account_id, ts - lag(ts) OVER (PARTITION BY account_id ORDER BY ts) AS gap FROM e),
gs AS (SELECT account_id, avg(gap) AS gm, stddev_samp(gap) AS gsd FROM gaps WHERE gap IS NOT NULL
       GROUP BY account_id),
hours AS (SELECT account_id, max(c) AS peak_hour FROM
          (SELECT account_id, floor(ts / 3600) AS h, count(*) AS c FROM e GROUP BY account_id, floor(ts / 3600)) h0
          GROUP BY account_id),
tp AS (SELECT account_id, tpl_p AS t, count(*) AS c FROM e WHERE tpl_p IS NOT NULL GROUP BY account_id, tpl_p),
tsf AS (SELECT account_id, tpl_s AS t, count(*) AS c FROM e WHERE tpl_s IS NOT NULL GROUP BY account_id, tpl_s),
tpr AS (SELECT account_id, count(*) AS np_, sum(c) AS nt FROM tp GROUP BY account_id),
tsr AS (SELECT account_id, count(*) AS ns_, sum(c) AS nts FROM tsf GROUP BY account_id),
base AS (SELECT account_id, count(*) AS n_requests, (max(ts) - min(ts)) / 3600.0 AS span_hours,
           min(ts) AS first_ts, count(DISTINCT body) AS n_bodies, sum(cot) AS n_cot,
           sum(diverse) AS n_diverse, sum(lp_req) AS n_logprob, sum(long_out) AS n_long,
           count(DISTINCT temperature) AS n_temperatures,
           avg(CASE WHEN n_turns <= 1 THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END) AS single_turn_share,
           avg(is_bench) AS bench_share
         FROM e GROUP BY account_id)
SELECT b.account_id, b.n_requests, h.peak_hour, b.span_hours, b.first_ts,
  greatest(coalesce(tpr.nt - tpr.np_, 0), coalesce(tsr.nts - tsr.ns_, 0)) AS n_reused,
  coalesce(tpr.np_, 0) AS n_templates,
  CAST(b.n_bodies AS DOUBLE) / b.n_requests AS distinct_ratio,
  b.n_cot, b.n_diverse, b.n_logprob, b.n_long, b.n_temperatures,
  b.single_turn_share, b.bench_share,
  CASE WHEN gs.gm > 0 THEN coalesce(gs.gsd, 0) / gs.gm END AS gap_cv
FROM base b JOIN hours h ON b.account_id = h.account_id
LEFT JOIN gs ON b.account_id = gs.account_id
LEFT JOIN tpr ON b.account_id = tpr.account_id
LEFT JOIN tsr ON b.account_id = tsr.account_id
ORDER BY b.account_id
"""

# Evidence that can link accounts into a campaign: templates each account used at least twice,
# and the account's /24 prefixes and user agents.
_LINKS = """
SELECT account_id, 'tpl' AS kind, tpl_p AS value, count(*) AS c FROM enriched
  WHERE tpl_p IS NOT NULL GROUP BY account_id, tpl_p HAVING count(*) >= 2
UNION ALL
SELECT account_id, 'ip24' AS kind, ip24 AS value, count(*) AS c FROM enriched
  WHERE ip24 IS NOT NULL AND ip24 <> '' GROUP BY account_id, ip24
UNION ALL
SELECT account_id, 'ua' AS kind, user_agent AS value, count(*) AS c FROM enriched
  WHERE user_agent IS NOT NULL GROUP BY account_id, user_agent
"""
