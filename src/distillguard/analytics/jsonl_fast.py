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

__all__ = ["FAST_SQL", "STAGED_PROMPT_SQL", "native_sql", "staged_prompt"]

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


def _len_le(x: str, n: int) -> str:
    # length() walks UTF-8; a string of at most n bytes has at most n characters.
    return f"(strlen({x}) <= {n} OR length({x}) <= {n})"


STAGED_PROMPT_SQL = (
    f"CASE WHEN NOT {_len_le('prompt', 2 * HEAD_CHARS)} THEN concat(left(prompt, {HEAD_CHARS}), ' ', "
    f"right(prompt, {HEAD_CHARS})) ELSE prompt END"
)
_RFC3339 = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_STR_OK = " AND ".join(_opt(s, '"') for s in _STR)
_INT_OK = " AND ".join(_opt_int(s) for s in _INT)
_PARAMS_OK = (
    f"({_null('pj.temperature')} OR {_num('pj.temperature')}) AND "
    + " AND ".join(_opt_int(f"pj.{s}") for s in ("max_tokens", "n", "top_logprobs", "seed"))
    + f" AND ({_null('pj.logprobs')} OR pj.logprobs IN ('true', 'false'))"
)

def _str(x: str) -> str:
    # The value of a JSON string (raw text starting with a quote).
    return f"json_extract_string({x}, '$')"


_MSGS = '[{"role":"JSON","content":"JSON"}]'


def _core(source: str) -> str:
    """The checks and the staged row over ``source``: rows of ``lineno``, ``len_ok`` and the
    top-level fields as raw JSON text (NULL when absent or JSON null). Every row comes out,
    with ``ok`` saying whether the SQL accepts it; a row that is not ok may hold anything (the
    casts are TRY_CASTs)."""
    msg_ok = (
        "list_bool_and(list_transform(mj, lambda e: starts_with(e.role, '\"') "
        "AND strpos(e.role, '\\\\') = 0 AND (e.content IS NULL OR starts_with(e.content, '\"'))))"
    )
    users = "list_filter(mj, lambda e: e.role = '\"user\"' AND e.content IS NOT NULL AND e.content NOT IN ('null', '\"\"'))"
    return f"""
WITH x AS ({source}), z AS (
  SELECT *,
    CASE WHEN {_is("params", "{")} THEN json_transform(params, '{_shape(_PPATHS)}') END AS pj,
    CASE WHEN {_null("prompt")} AND {_is("messages", "[")} THEN json_transform(messages, '{_MSGS}') END AS mj,
    CASE WHEN {_num("ts")} THEN TRY_CAST(ts AS DOUBLE)
         WHEN regexp_full_match(ts, '"{_RFC3339[1:-1]}"')
         THEN epoch_us(try_cast({_str("ts")} AS TIMESTAMPTZ)) / 1e6 END AS tsd,
    coalesce(len_ok AND {_is("account_id", '"')} AND {_opt("params", "{")} AND {_opt("prompt", '"')}
      AND {_STR_OK} AND {_INT_OK} AND ({_null("latency_ms")} OR {_num("latency_ms")}), false) AS ok1
  FROM x
), w AS (
  SELECT lineno, ok1, tsd, pj, {_str("account_id")} AS aid,
    CASE WHEN {_is("prompt", '"')} THEN {_str("prompt")} END AS p1,
    CASE WHEN mj IS NOT NULL AND len(mj) > 0 AND {msg_ok} THEN {users} END AS ut,
    ip, user_agent, endpoint, model
  FROM z
), v AS (
  SELECT *, coalesce(p1, {_str("ut[-1].content")}) AS prompt FROM w
)
SELECT lineno,
  coalesce(ok1 AND tsd >= {_TS_MIN} AND tsd < {_TS_MAX} AND (pj IS NULL OR ({_PARAMS_OK}))
    AND (p1 IS NOT NULL OR len(ut) > 0) AND {_len_le("prompt", MAX_FIELD_CHARS)}
    AND aid <> '' AND {_len_le("aid", MAX_FIELD_CHARS)}, false) AS ok,
  tsd AS ts, aid AS account_id, {STAGED_PROMPT_SQL} AS prompt,
  CAST(CASE WHEN p1 IS NOT NULL THEN 1 ELSE len(ut) END AS BIGINT) AS n_turns,
  {_str("ip")} AS ip, {_str("user_agent")} AS user_agent,
  {_str("endpoint")} AS endpoint, {_str("model")} AS model,
  TRY_CAST(pj.temperature AS DOUBLE) AS temperature,
  TRY_CAST(pj.max_tokens AS BIGINT) AS max_tokens, TRY_CAST(pj.n AS BIGINT) AS n,
  TRY_CAST(pj.logprobs AS BOOLEAN) AS logprobs, TRY_CAST(pj.top_logprobs AS BIGINT) AS top_logprobs,
  CAST(NULL AS BIGINT) AS topic
FROM v"""


# Reads relation ``chunk(lineno BIGINT, line VARCHAR)``; yields ``lineno`` plus the staged
# columns for every line it accepts. MATERIALIZED keeps DuckDB from inlining (and so
# re-evaluating) the parsed JSON into every later reference.
FAST_SQL = f"""
SELECT * EXCLUDE (ok) FROM ({_core(
    "SELECT lineno, true AS len_ok, s.* FROM (SELECT lineno, "
    f"json_transform(line, '{_shape(_PATHS)}') AS s FROM chunk "
    f"WHERE length(line) <= {4 * MAX_FIELD_CHARS} AND left(ltrim(line), 1) = '{{' AND json_valid(line))"
)}) WHERE ok
"""


def native_sql(path: str) -> str:
    """The same checks over a JSONL file parsed by DuckDB's own JSON reader (no Python per line).

    Yields every non-blank line (``lineno`` = its rank among them, from ``WITH ORDINALITY``)
    with ``ok``; a line DuckDB cannot parse comes out with every field NULL and ``ok`` false.
    With no raw line to measure, each string field's raw JSON must be at most MAX_FIELD_CHARS
    bytes and all the read fields together at most 4 * MAX_FIELD_CHARS bytes (fields outside
    the schema are not read, so they are not counted); anything longer is left to Python.
    """
    lit = path.replace("'", "''")
    cols = "{" + ", ".join(f"{n}: 'JSON'" for n in _PATHS) + "}"
    strs = " AND ".join(f"coalesce(strlen({n}), 0) <= {MAX_FIELD_CHARS}" for n in ["account_id", "prompt", *_STR])
    total = " + ".join(f"coalesce(strlen({n}), 0)" for n in _PATHS)
    source = (
        f"SELECT ordinality AS lineno, {strs} AND {total} <= {4 * MAX_FIELD_CHARS} AS len_ok, * "
        f"FROM read_json('{lit}', format = 'newline_delimited', columns = {cols}, "
        f"ignore_errors = true, maximum_object_size = {16 * MAX_FIELD_CHARS}) WITH ORDINALITY"
    )
    return _core(source)
