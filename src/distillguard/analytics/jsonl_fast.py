"""Fast JSONL validation: the common case checked in DuckDB SQL, everything else in Python.

:func:`distillguard.analytics.log_record.validate_record` is the one authority on what a valid
record is and why a bad one is bad. Running it per line costs ~15 µs in Python, so JSONL is
read in byte chunks and each chunk's lines go through :data:`FAST_SQL` first: it accepts a line
only when every field has exactly the type the schema wants (ts a number or a strict RFC 3339
string with an offset; strings strings; integers integers; messages a list of
``{role: string, content: string|null}``), and emits the same staged row Python would. Any
line it does not accept (invalid JSON, a wrong type, an unusual timestamp spelling, content
parts, a huge line) is handed to ``validate_record``, which either accepts it or gives the
quarantine reason. So the SQL only ever *narrows* the fast path; a test checks that it never
accepts what Python rejects and that both emit identical rows.

Known difference: JSON objects with a duplicated key (undefined in RFC 8259) — DuckDB reads
the first occurrence, Python's ``json`` the last.
"""

# ruff: noqa: E501 - SQL reads better unwrapped than split across string literals

from __future__ import annotations

from distillguard.analytics.features import HEAD_CHARS
from distillguard.analytics.log_record import _TS_MAX, _TS_MIN, MAX_FIELD_CHARS

__all__ = ["FAST_SQL", "STAGED_PROMPT_SQL", "staged_prompt"]

_STR = ["request_id", "api_key_id", "ip", "user_agent", "org_id", "endpoint", "model", "response", "session_id"]
_INT = ["prompt_tokens", "completion_tokens", "status"]
_PATHS = ["ts", "account_id", "prompt", "messages", "params", *_STR, *_INT, "latency_ms"]
_PPATHS = ["temperature", "max_tokens", "n", "logprobs", "top_logprobs", "seed"]


def _t(x: str) -> str:
    # The JSON type of a raw JSON value (as json_transform keeps it) from its first character,
    # without parsing it again: absent and JSON null are both 'NULL' (Python's dict.get()).
    return (
        f"CASE left(coalesce({x}, 'null'), 1) WHEN '\"' THEN 'VARCHAR' WHEN '{{' THEN 'OBJECT' "
        f"WHEN '[' THEN 'ARRAY' WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN' "
        f"WHEN 'n' THEN 'NULL' ELSE 'NUMBER' END"
    )


def _null(x: str) -> str:
    return f"({x} IS NULL OR {x} = 'null')"


def _is(x: str, first: str) -> str:
    # Cheaper than _t() in the hot path: one prefix test on the raw JSON text.
    return f"starts_with({x}, '{first}')"


def _opt(x: str, first: str) -> str:
    return f"({_null(x)} OR {_is(x, first)})"


def _num(x: str) -> str:
    # In valid JSON a value starting with '-' or a digit is a number.
    return f"(left({x}, 1) BETWEEN '0' AND '9' OR starts_with({x}, '-'))"


def _opt_int(x: str) -> str:
    # Absent/null, or an integer literal that fits int64 without question (<= 18 digits).
    return f"({x} IS NULL OR {x} = 'null' OR regexp_full_match({x}, '-?[0-9]{{1,18}}'))"


def _shape(names: list[str]) -> str:
    # A json_transform structure that keeps each named field as raw JSON: one parse per line.
    return "{" + ",".join(f'"{n}":"JSON"' for n in names) + "}"


def staged_prompt(text: str) -> str:
    """The prompt as staged: whole, or its first and last HEAD_CHARS characters (see features)."""
    h = HEAD_CHARS
    return text if len(text) <= 2 * h else f"{text[:h]} {text[-h:]}"


STAGED_PROMPT_SQL = (
    f"CASE WHEN length(prompt) > {2 * HEAD_CHARS} THEN concat(left(prompt, {HEAD_CHARS}), ' ', "
    f"right(prompt, {HEAD_CHARS})) ELSE prompt END"
)
_RFC3339 = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_STR_OK = " AND ".join(_opt(f"s.{s}", '"') for s in _STR)
_INT_OK = " AND ".join(_opt_int(f"s.{s}") for s in _INT)
_PARAMS_OK = (
    f"({_null('pj.temperature')} OR {_num('pj.temperature')}) AND "
    + " AND ".join(_opt_int(f"pj.{s}") for s in ("max_tokens", "n", "top_logprobs", "seed"))
    + f" AND ({_null('pj.logprobs')} OR pj.logprobs IN ('true', 'false'))"
)

# Reads relation ``chunk(lineno BIGINT, line VARCHAR)``; yields ``lineno`` plus the staged
# columns for every line it accepts. MATERIALIZED keeps DuckDB from inlining (and so
# re-evaluating) the parsed JSON into every later reference.
FAST_SQL = f"""
WITH x AS (
  SELECT lineno, json_transform(line, '{_shape(_PATHS)}') AS s FROM chunk
  WHERE length(line) <= {4 * MAX_FIELD_CHARS} AND left(ltrim(line), 1) = '{{' AND json_valid(line)
), z AS (
  SELECT lineno, s,
    CASE WHEN {_is("s.messages", "[")} THEN json_extract(s.messages, '$[*]') END AS msgs,
    CASE WHEN {_is("s.params", "{")} THEN json_transform(s.params, '{_shape(_PPATHS)}') END AS pj,
    CASE WHEN {_num("s.ts")} THEN CAST(s.ts AS DOUBLE)
         WHEN regexp_full_match(s.ts, '"{_RFC3339[1:-1]}"')
         THEN epoch_us(try_cast(s.ts ->> '$' AS TIMESTAMPTZ)) / 1e6 END AS ts
  FROM x
  WHERE {_is("s.account_id", '"')} AND {_opt("s.params", "{")} AND {_opt("s.prompt", '"')}
    AND {_STR_OK} AND {_INT_OK} AND ({_null("s.latency_ms")} OR {_num("s.latency_ms")})
), m AS MATERIALIZED (
  SELECT *,
    CASE WHEN msgs IS NOT NULL THEN
      list_filter(msgs, lambda e: json_type(e) <> 'OBJECT' OR {_t("e -> '$.role'")} <> 'VARCHAR'
                  OR {_t("e -> '$.content'")} NOT IN ('NULL', 'VARCHAR')) END AS bad_msgs,
    CASE WHEN msgs IS NOT NULL THEN list_transform(
      list_filter(msgs, lambda e: (e ->> '$.role') = 'user' AND coalesce(e ->> '$.content', '') <> ''),
      lambda e: e ->> '$.content') END AS user_turns
  FROM z
  WHERE ts >= {_TS_MIN} AND ts < {_TS_MAX} AND (pj IS NULL OR ({_PARAMS_OK}))
), w AS (
  SELECT lineno, ts, s.account_id ->> '$' AS account_id,
    CASE WHEN {_is("s.prompt", '"')} THEN s.prompt ->> '$' ELSE user_turns[-1] END AS prompt,
    CASE WHEN {_is("s.prompt", '"')} THEN 1 ELSE len(user_turns) END AS n_turns,
    s.ip ->> '$' AS ip, s.user_agent ->> '$' AS user_agent,
    s.endpoint ->> '$' AS endpoint, s.model ->> '$' AS model,
    CAST(pj.temperature AS DOUBLE) AS temperature,
    CAST(pj.max_tokens AS BIGINT) AS max_tokens, CAST(pj.n AS BIGINT) AS n,
    CAST(pj.logprobs AS BOOLEAN) AS logprobs, CAST(pj.top_logprobs AS BIGINT) AS top_logprobs
  FROM m
  WHERE ({_is("s.prompt", '"')}
         OR (msgs IS NOT NULL AND len(msgs) > 0 AND len(bad_msgs) = 0 AND len(user_turns) > 0))
)
SELECT lineno, ts, account_id, {STAGED_PROMPT_SQL} AS prompt, CAST(n_turns AS BIGINT) AS n_turns,
  ip, user_agent, endpoint, model, temperature, max_tokens, n, logprobs, top_logprobs,
  CAST(NULL AS BIGINT) AS topic
FROM w WHERE length(w.prompt) <= {MAX_FIELD_CHARS}
  AND length(w.account_id) BETWEEN 1 AND {MAX_FIELD_CHARS}
  AND (w.ip IS NULL OR length(w.ip) <= {MAX_FIELD_CHARS})
"""
