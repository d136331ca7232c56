"""The analytical copy's schema: one declarative table of typed columns.

The copy holds ``raw_events``: the log's rows as they are (position,
stream, version, topic, payload as JSON text, hash). Loading only that is
what keeps a refresh fast (~2x faster than also extracting typed columns,
measured: DuckDB's JSON parsing and the extra writes cost more than the
copy itself).

Per event class that people ask questions about there is a typed relation
``ev_<kind>`` with the payload's fields as typed columns. It is a view over
two parts: ``mat_<kind>``, a table of the rows already extracted (by
``from_json``, one parse per event, vectorised in C++), and the *tail*: the
events of that class after the table's tracked position, extracted on the
fly. So the answer is always complete, whether or not the table has caught
up; catching up (:func:`materialize_sql`) only makes it fast (a group-by
over a materialised 130k-row table takes a few ms; over JSON, ~100 ms).
``uok sql`` catches up the tables its query reads before running it.

The public, documented surface is the set of views in :data:`VIEWS`
(``docs/schema.md``); ``raw_events``, ``ev_*``, ``mat_*`` and ``_uok_*`` may
change between schema versions. Bump :data:`SCHEMA_VERSION` whenever
anything here changes: a copy of another version is dropped and rebuilt
from the log on the next refresh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

SCHEMA_VERSION = 9  # 3: runs.status is failed when units did not complete; 4: agent_steps, tool_calls;
# 5: eval_runs, eval_variants; 6: requeues; 7: plan_compiled.plan_id from PlanCompiled v2 (graph by reference);
# 8: raw_events.payload VARCHAR (events.payload is still JSON);
# 9: compact payloads (issue 15): a field the payload leaves out reads as its default

# Terminal unit states (uok.domain.policies.lifecycle.TERMINAL), spelled out for SQL.
_TERMINAL = "('completed','failed','blocked','cancelled','stale','runaway-recovered')"


@dataclass(frozen=True)
class Column:
    name: str  # column in the typed table
    path: tuple[str, ...]  # keys into the event's JSON payload
    type: str  # DuckDB type
    fallback: tuple[str, ...] = ()  # keys read where ``path`` is absent (an older version of the event)


@dataclass(frozen=True)
class Typed:
    """Events of one class (any topic version) loaded into ``ev_<table>``."""

    event: str  # event class name, the part of the topic before "/v"
    table: str
    columns: tuple[Column, ...]


def _c(name: str, type_: str = "VARCHAR", path: str | None = None, fallback: str = "") -> Column:
    return Column(name, tuple((path or name).split(".")), type_, tuple(fallback.split(".")) if fallback else ())


# Every typed table starts with position, run_id and ts (the event's ``at``).
_BASE = (_c("run_id"), _c("ts", "TIMESTAMPTZ", "at"))

TYPED: tuple[Typed, ...] = (
    Typed(
        "KernelEntered",
        "kernel_entered",
        (
            *_BASE,
            _c("pid", "BIGINT"),
            _c("host"),
            _c("plan_path"),
            _c("workers", "INTEGER"),
            _c("work_mode"),
            _c("model_mode"),
            _c("flags", "JSON"),
        ),
    ),
    Typed(
        "KernelExited",
        "kernel_exited",
        (
            *_BASE,
            _c("status"),
            _c("pid", "BIGINT"),
            _c("error"),
            _c("units_completed", "INTEGER"),
            _c("units_failed", "INTEGER"),
        ),
    ),
    Typed(
        "RunRecovered",
        "run_recovered",
        (
            *_BASE,
            _c("recovered_run"),
            _c("pid", "BIGINT"),
            _c("stale_units", "JSON"),
        ),
    ),
    Typed("PlanCompiled", "plan_compiled", (*_BASE, _c("plan_id", fallback="graph.plan_id"))),  # v1: in the graph
    Typed(
        "UnitTransitioned",
        "unit_transitioned",
        (
            *_BASE,
            _c("plan_id"),
            _c("unit_id"),
            _c("from_state"),
            _c("to_state"),
            _c("attempt", "INTEGER"),
            _c("dispatches", "INTEGER"),
            _c("failure_class"),
            _c("reason"),
            _c("turn_id"),
        ),
    ),
    Typed(
        "TurnStarted",
        "turn_started",
        (
            *_BASE,
            _c("turn_id"),
            _c("iteration", "INTEGER"),
            _c("unit_id"),
            _c("unit_type"),
            _c("attempt", "INTEGER"),
        ),
    ),
    Typed(
        "TurnFinished",
        "turn_finished",
        (
            *_BASE,
            _c("turn_id"),
            _c("unit_id"),
            _c("status"),
            _c("failure_class"),
            _c("error"),
            _c("started_at", "TIMESTAMPTZ"),
        ),
    ),
    Typed(
        "ExecutionFinished",
        "execution_finished",
        (
            *_BASE,
            _c("turn_id"),
            _c("unit_id"),
            _c("exit_code", "INTEGER"),
            _c("duration_ms", "BIGINT"),
            _c("timed_out", "BOOLEAN"),
            _c("error"),
            _c("usage", "JSON"),
            _c("stdout_path", path="stdout_log.path"),
            _c("stdout_bytes", "BIGINT", "stdout_log.size"),
            _c("stdout_sha256", path="stdout_log.sha256"),
            _c("stderr_path", path="stderr_log.path"),
            _c("stderr_bytes", "BIGINT", "stderr_log.size"),
            _c("stderr_sha256", path="stderr_log.sha256"),
            _c("stop_reason", path="stop.reason"),
            _c("stop_signals", "JSON", "stop.signals"),
        ),
    ),
    Typed(
        "GateRun",
        "gate_run",
        (
            *_BASE,
            _c("turn_id"),
            _c("unit_id"),
            _c("gate_id"),
            _c("gate_type"),
            _c("attempt", "INTEGER"),
            _c("max_attempts", "INTEGER"),
            _c("outcome"),
            _c("failure_class"),
            _c("retryable", "BOOLEAN"),
            _c("rationale"),
            _c("duration_ms", "BIGINT"),
            _c("short_circuited", "BOOLEAN"),
            _c("fingerprint"),
            _c("breaker_state"),
            _c("findings", "JSON"),
        ),
    ),
    Typed(
        "BreakerTransitioned",
        "breaker_transitioned",
        (
            *_BASE,
            _c("gate_id"),
            _c("from_state"),
            _c("to_state"),
            _c("streak", "INTEGER"),
            _c("consecutive_failures", "INTEGER"),
            _c("open_until", "TIMESTAMPTZ"),
            _c("reason"),
            _c("probe_deadline", "TIMESTAMPTZ"),
        ),
    ),
    Typed(
        "CostRecorded",
        "cost_recorded",
        (
            *_BASE,
            _c("plan_id"),
            _c("turn_id"),
            _c("unit_id"),
            _c("model"),
            _c("input_tokens", "BIGINT"),
            _c("output_tokens", "BIGINT"),
            _c("cost_usd", "DOUBLE"),
            _c("priced", "BOOLEAN"),
        ),
    ),
    Typed(
        "MessageSent",
        "message_sent",
        (
            *_BASE,
            _c("message_id"),
            _c("sender"),
            _c("recipient"),
            _c("topic"),
            _c("payload", "JSON"),
            _c("dedupe_key"),
            _c("turn_id"),
        ),
    ),
    Typed("MessageRead", "message_read", (*_BASE, _c("message_id"), _c("reader"))),
    Typed(
        "AgentStep",
        "agent_step",
        (
            *_BASE,
            _c("turn_id"),
            _c("unit_id"),
            _c("agent"),
            _c("seq", "INTEGER"),
            _c("kind"),
            _c("text"),
            _c("blob"),
            _c("text_size", "BIGINT"),
            _c("tool"),
            _c("tool_id"),
            _c("args"),
            _c("is_error", "BOOLEAN"),
            _c("duration_ms", "BIGINT"),
            _c("files", "JSON"),
            _c("model", "VARCHAR", "usage.model"),
            _c("input_tokens", "BIGINT", "usage.input_tokens"),
            _c("output_tokens", "BIGINT", "usage.output_tokens"),
            _c("cache_read_tokens", "BIGINT", "usage.cache_read_tokens"),
            _c("cache_write_tokens", "BIGINT", "usage.cache_write_tokens"),
            _c("cost_usd", "DOUBLE"),
            _c("session_id"),
            _c("subtype"),
        ),
    ),
    Typed(
        "UnitRequeued",
        "unit_requeued",
        (
            *_BASE,
            _c("plan_id"),
            _c("unit_id"),
            _c("cause"),
            _c("was"),
            _c("epoch", "BOOLEAN"),
            _c("old_fingerprint"),
            _c("new_fingerprint"),
            _c("dependency"),
            _c("by"),
            _c("reason"),
        ),
    ),
)

RAW_DDL = (
    # zstd for the payload: measured 2x faster to load than DuckDB's default
    # string compression analysis, and 2.4x smaller; hashes are random bytes.
    # The payload is VARCHAR, not JSON: inserting into a JSON column parses
    # every payload to validate it (~20 % of the insert), and the hash check
    # already proves each payload is the bytes uok wrote; the events view
    # gives it the JSON type.
    """CREATE TABLE raw_events (
        position BIGINT NOT NULL, stream VARCHAR NOT NULL, version BIGINT NOT NULL,
        topic VARCHAR NOT NULL, payload VARCHAR USING COMPRESSION zstd NOT NULL,
        hash BLOB USING COMPRESSION uncompressed NOT NULL)""",
    """CREATE TABLE _uok_copy (
        schema_version INTEGER NOT NULL, loaded_position BIGINT NOT NULL,
        loaded_hash BLOB NOT NULL, source VARCHAR NOT NULL)""",
    "CREATE TABLE _uok_typed (name VARCHAR PRIMARY KEY, loaded_position BIGINT NOT NULL)",
)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _structure(columns: tuple[Column, ...]) -> dict:
    """The ``from_json`` structure: nested dicts of JSON key -> DuckDB type."""
    root: dict = {}
    for c in columns:
        for path in (c.path, c.fallback) if c.fallback else (c.path,):
            node = root
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = c.type
    return root


@functools.cache
def _default_sql(event: str, c: Column) -> str | None:
    """The SQL literal of the event field a top-level column reads, when
    that field has a default: compact payloads (``uok.domain.log.codec``)
    leave a field at its default out, and decoding fills it in; so does the
    typed view. None when the field has no default (or it is None)."""
    import msgspec
    from uok.domain.log.codec import event_class

    if len(c.path) != 1:
        return None  # a field of a nested Struct: nested Structs are encoded whole
    try:
        fields = {f.name: f for f in msgspec.structs.fields(event_class(event))}
    except Exception:  # noqa: BLE001  (an event class this version does not define)
        return None
    f = fields.get(c.path[0])
    if f is None or (f.default is msgspec.NODEFAULT and f.default_factory is msgspec.NODEFAULT):
        return None
    value = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
    if value is None:
        return None
    if c.type == "JSON":
        return "'" + msgspec.json.encode(value).decode().replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None


def _field(path: tuple[str, ...]) -> str:
    """``struct_extract`` chain: unambiguous, where ``s.a.b`` may be read as
    schema ``s``, table ``a``, column ``b`` by DuckDB's binder."""
    expr = "s"
    for key in path:
        expr = f"struct_extract({expr}, '{key}')"
    return expr


def typed_select(t: Typed, where: str) -> str:
    """``SELECT position, <typed columns>`` of the ``t.event`` events of
    ``raw_events`` that satisfy ``where``."""
    import json

    structure = json.dumps(_structure(t.columns)).replace("'", "''")

    def expr(c: Column) -> str:
        parts = [_field(c.path), *((_field(c.fallback),) if c.fallback else ())]
        default = _default_sql(t.event, c)
        if default is not None:
            parts.append(f"CAST({default} AS {c.type})")
        return f"coalesce({', '.join(parts)})" if len(parts) > 1 else parts[0]

    fields = ", ".join(f"{expr(c)} AS {_quote(c.name)}" for c in t.columns)
    prefix = t.event.replace("'", "''") + "/"
    return (
        f"SELECT position, {fields} FROM "
        f"(SELECT position, from_json(payload, '{structure}') AS s FROM raw_events "
        f"WHERE starts_with(topic, '{prefix}') AND ({where}))"
    )


def _tracked(t: Typed) -> str:
    return f"(SELECT loaded_position FROM _uok_typed WHERE name = '{t.table}')"


def typed_ddl(t: Typed) -> list[str]:
    cols = ", ".join(f"{_quote(c.name)} {c.type}" for c in t.columns)
    return [
        f"CREATE TABLE mat_{t.table} (position BIGINT NOT NULL, {cols})",
        f"INSERT INTO _uok_typed VALUES ('{t.table}', 0)",
        f"CREATE VIEW ev_{t.table} AS SELECT * FROM mat_{t.table} UNION ALL "
        + typed_select(t, f"position > {_tracked(t)}"),
    ]


def materialize_sql(t: Typed) -> list[str]:
    """Statements (one transaction) that move ``mat_<t>`` up to the copy's head."""
    return [
        f"INSERT INTO mat_{t.table} " + typed_select(t, f"position > {_tracked(t)}"),
        f"UPDATE _uok_typed SET loaded_position = (SELECT loaded_position FROM _uok_copy) WHERE name = '{t.table}'",
    ]


VIEWS: dict[str, str] = {
    "events": """
        SELECT position, stream, version, topic,
               split_part(topic, '/v', 1) AS type,
               TRY_CAST(split_part(topic, '/v', 2) AS INTEGER) AS topic_version,
               coalesce(payload->>'$.run_id', '') AS run_id,
               TRY_CAST(payload->>'$.at' AS TIMESTAMPTZ) AS ts,
               CAST(payload AS JSON) AS payload,
               lower(hex(hash)) AS hash
        FROM raw_events""",
    "runs": """
        WITH ends AS (
            SELECT run_id, position, ts,
                   CASE WHEN status = 'ok' AND units_failed > 0 THEN 'failed' ELSE status END AS status,
                   error, units_completed, units_failed FROM ev_kernel_exited
            UNION ALL
            SELECT recovered_run, position, ts, 'recovered', '', NULL, NULL FROM ev_run_recovered),
        last_end AS (
            SELECT run_id, arg_max(status, position) AS status, arg_max(ts, position) AS exited_at,
                   arg_max(error, position) AS error, arg_max(units_completed, position) AS units_completed,
                   arg_max(units_failed, position) AS units_failed
            FROM ends GROUP BY run_id),
        plans AS (SELECT run_id, arg_max(plan_id, position) AS plan_id FROM ev_plan_compiled GROUP BY run_id)
        SELECT e.run_id, p.plan_id, coalesce(x.status, 'open') AS status, e.pid, e.host, e.plan_path,
               e.workers, e.work_mode, e.model_mode, e.ts AS entered_at, x.exited_at,
               x.units_completed, x.units_failed, x.error, e.position AS entered_position
        FROM ev_kernel_entered e
        LEFT JOIN plans p ON p.run_id = e.run_id
        LEFT JOIN last_end x ON x.run_id = e.run_id""",
    "unit_transitions": "SELECT * FROM ev_unit_transitioned",
    "requeues": "SELECT * FROM ev_unit_requeued",
    "units": f"""
        WITH u AS (
            SELECT plan_id, unit_id,
                   arg_max(to_state, position) AS last_state,
                   arg_max(to_state, position) FILTER (WHERE to_state IN {_TERMINAL}) AS outcome,
                   arg_max(attempt, position) AS attempt,
                   arg_max(dispatches, position) AS dispatches,
                   arg_max(failure_class, position) AS failure_class,
                   arg_max(reason, position) AS reason,
                   arg_max(turn_id, position) FILTER (WHERE turn_id <> '') AS turn_id,
                   arg_max(run_id, position) AS run_id,
                   max(ts) AS updated_at,
                   count(*) AS transitions,
                   count(*) FILTER (WHERE to_state = 'progress') AS progress_count
            FROM ev_unit_transitioned GROUP BY plan_id, unit_id)
        SELECT plan_id, unit_id,
               CASE WHEN last_state = 'notified' THEN coalesce(outcome, last_state) ELSE last_state END AS state,
               last_state, outcome, last_state = 'notified' AS notified, attempt, dispatches, failure_class,
               reason, turn_id, run_id, updated_at, transitions, progress_count
        FROM u""",
    "turns": """
        WITH f AS (
            SELECT turn_id, arg_min(status, position) AS status, arg_min(failure_class, position) AS failure_class,
                   arg_min(error, position) AS error, min(ts) AS finished_at, min(position) AS finished_position
            FROM ev_turn_finished GROUP BY turn_id),
        x AS (
            SELECT turn_id, arg_max(exit_code, position) AS exit_code, arg_max(duration_ms, position) AS exec_duration_ms,
                   arg_max(timed_out, position) AS timed_out
            FROM ev_execution_finished GROUP BY turn_id)
        SELECT s.turn_id, s.run_id, s.unit_id, s.unit_type, s.iteration, s.attempt,
               s.ts AS started_at, f.finished_at, f.status, f.failure_class, f.error,
               CAST(epoch_ms(f.finished_at) - epoch_ms(s.ts) AS BIGINT) AS duration_ms,
               x.exit_code, x.exec_duration_ms, x.timed_out,
               s.position AS started_position, f.finished_position
        FROM ev_turn_started s
        LEFT JOIN f ON f.turn_id = s.turn_id
        LEFT JOIN x ON x.turn_id = s.turn_id""",
    "executions": "SELECT * FROM ev_execution_finished",
    "gate_runs": "SELECT * FROM ev_gate_run",
    "breaker_transitions": "SELECT * FROM ev_breaker_transitioned",
    "costs": "SELECT * FROM ev_cost_recorded",
    "agent_steps": "SELECT * FROM ev_agent_step",
    "tool_calls": """
        WITH r AS (
            SELECT turn_id, tool_id, arg_min(is_error, position) AS is_error,
                   arg_min(duration_ms, position) AS duration_ms, arg_min(text, position) AS result,
                   min(ts) AS finished_at
            FROM ev_agent_step WHERE kind = 'tool_result' AND tool_id <> '' GROUP BY turn_id, tool_id)
        SELECT c.run_id, c.turn_id, c.unit_id, c.agent, c.seq, c.tool_id, c.tool, c.args, c.files,
               c.ts AS called_at, r.finished_at, r.duration_ms, coalesce(r.is_error, false) AS is_error,
               r.result, r.finished_at IS NOT NULL AS finished, c.position
        FROM ev_agent_step c LEFT JOIN r ON r.turn_id = c.turn_id AND r.tool_id = c.tool_id
        WHERE c.kind = 'tool_call'""",
    "messages": """
        WITH r AS (
            SELECT message_id, min(ts) AS read_at, arg_min(reader, position) AS read_by, count(*) AS reads
            FROM ev_message_read GROUP BY message_id)
        SELECT s.message_id, s.run_id, s.turn_id, s.sender, s.recipient, s.topic, s.payload, s.dedupe_key,
               s.ts AS sent_at, r.read_at, r.read_by, coalesce(r.reads, 0) AS reads,
               r.read_at IS NOT NULL AS is_read, s.position
        FROM ev_message_sent s LEFT JOIN r ON r.message_id = s.message_id""",
    # Evals (behaviour §20): the same definitions as uok.domain.eval.summary, so that
    # `uok eval report` and these views give the same numbers over the same log.
    "eval_runs": """
        WITH tagged AS (
            SELECT run_id, position, ts, work_mode, model_mode,
                   flags->>'$.eval.eval_id' AS eval_id, flags->>'$.eval.suite' AS suite,
                   flags->>'$.eval.case' AS case_id, flags->>'$.eval.variant' AS variant,
                   TRY_CAST(flags->>'$.eval.repetition' AS INTEGER) AS repetition
            FROM ev_kernel_entered WHERE flags->>'$.eval.eval_id' IS NOT NULL),
        ends AS (
            SELECT run_id, position, ts,
                   CASE WHEN status = 'ok' AND units_failed > 0 THEN 'failed' ELSE status END AS status,
                   units_completed, units_failed FROM ev_kernel_exited
            UNION ALL
            SELECT recovered_run, position, ts, 'recovered', NULL, NULL FROM ev_run_recovered),
        x AS (
            SELECT run_id, arg_max(status, position) AS status, arg_max(ts, position) AS exited_at,
                   arg_max(units_completed, position) AS units_completed,
                   arg_max(units_failed, position) AS units_failed
            FROM ends GROUP BY run_id),
        c AS (
            SELECT run_id, sum(cost_usd) AS cost_usd, sum(input_tokens) AS input_tokens,
                   sum(output_tokens) AS output_tokens
            FROM ev_cost_recorded GROUP BY run_id),
        t AS (
            SELECT run_id, count(*) AS turns, count(*) FILTER (WHERE attempt > 1) AS retries
            FROM ev_turn_started GROUP BY run_id),
        g AS (
            SELECT run_id, count(*) FILTER (WHERE outcome = 'pass') AS gates_passed,
                   count(*) FILTER (WHERE outcome NOT IN ('pass', 'skip')) AS gates_failed
            FROM ev_gate_run GROUP BY run_id)
        SELECT e.eval_id, e.suite, e.case_id, e.variant, e.repetition, e.run_id,
               coalesce(x.status, 'open') AS status, coalesce(x.status = 'ok', false) AS passed,
               e.work_mode, e.model_mode,
               coalesce(x.units_completed, 0) AS units_completed, coalesce(x.units_failed, 0) AS units_failed,
               coalesce(g.gates_passed, 0) AS gates_passed, coalesce(g.gates_failed, 0) AS gates_failed,
               coalesce(t.turns, 0) AS turns, coalesce(t.retries, 0) AS retries,
               coalesce(c.cost_usd, 0.0) AS cost_usd, coalesce(c.input_tokens, 0) AS input_tokens,
               coalesce(c.output_tokens, 0) AS output_tokens,
               coalesce(c.input_tokens + c.output_tokens, 0) AS tokens,
               e.ts AS entered_at, x.exited_at,
               (epoch_us(x.exited_at) - epoch_us(e.ts)) / 1000.0 AS duration_ms,
               e.position AS entered_position
        FROM tagged e
        LEFT JOIN x ON x.run_id = e.run_id
        LEFT JOIN c ON c.run_id = e.run_id
        LEFT JOIN t ON t.run_id = e.run_id
        LEFT JOIN g ON g.run_id = e.run_id""",
    "eval_variants": """
        WITH v AS (
            SELECT eval_id, any_value(suite) AS suite, variant, count(*) AS runs,
                   count(*) FILTER (WHERE passed) AS passes, count(DISTINCT case_id) AS cases,
                   sum(units_completed) AS units_completed, sum(units_failed) AS units_failed,
                   sum(gates_passed) AS gates_passed, sum(gates_failed) AS gates_failed,
                   avg(cost_usd) AS cost_usd_mean, avg(tokens) AS tokens_mean,
                   avg(duration_ms) AS duration_ms_mean,
                   quantile_cont(duration_ms, 0.5) AS duration_p50_ms,
                   quantile_cont(duration_ms, 0.95) AS duration_p95_ms,
                   avg(retries) AS retries_mean
            FROM eval_runs WHERE status <> 'open' GROUP BY eval_id, variant),
        w AS (SELECT *, passes / runs AS p, 1.959963984540054 AS z FROM v)
        SELECT eval_id, suite, variant, runs, passes, cases, p AS pass_rate,
               greatest(0.0, ((p + z * z / (2 * runs)) - z * sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)))
                   / (1 + z * z / runs)) AS pass_rate_low,
               least(1.0, ((p + z * z / (2 * runs)) + z * sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs)))
                   / (1 + z * z / runs)) AS pass_rate_high,
               units_completed, units_failed, gates_passed, gates_failed, cost_usd_mean, tokens_mean,
               duration_ms_mean, duration_p50_ms, duration_p95_ms, retries_mean,
               rank() OVER (PARTITION BY eval_id ORDER BY p DESC, cost_usd_mean, duration_p50_ms, variant) AS rank
        FROM w""",
}


def all_ddl() -> list[str]:
    """Every statement that creates an empty copy of this schema version."""
    out = list(RAW_DDL)
    for t in TYPED:
        out += typed_ddl(t)
    out += [f"CREATE VIEW {name} AS {sql}" for name, sql in VIEWS.items()]
    return out


PUBLIC_RELATIONS = frozenset(VIEWS)
TYPED_BY_TABLE = {t.table: t for t in TYPED}


def typed_needed(relations: set[str]) -> set[str]:
    """The typed tables (``Typed.table``) that queries of ``relations`` read."""
    import re

    out: set[str] = set()
    todo, seen = [r.lower() for r in relations], set()
    while todo:
        rel = todo.pop()
        if rel in seen:
            continue
        seen.add(rel)
        sql = VIEWS.get(rel, "")
        out.update(re.findall(r"\bev_(\w+)", sql))
        todo.extend(v for v in VIEWS if re.search(rf"\bFROM {v}\b", sql))  # a view over a view (eval_variants)
        if rel.startswith(("ev_", "mat_")):
            out.add(rel.split("_", 1)[1])
    return {name for name in out if name in TYPED_BY_TABLE}
