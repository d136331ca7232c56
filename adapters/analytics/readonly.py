"""Running a user's SQL against the copy without letting it change or read
anything else.

Three independent layers, so that a gap in one is caught by another:

1. **Classification by DuckDB's own parser** (:func:`check`):
   ``duckdb.extract_statements`` must yield exactly one statement of type
   SELECT (which covers WITH, VALUES, FROM-first, DESCRIBE, SUMMARIZE and
   SHOW) or EXPLAIN of one; everything else (INSERT/UPDATE/DELETE, CREATE,
   ATTACH/DETACH, COPY, EXPORT/IMPORT, INSTALL/LOAD, PRAGMA, SET/RESET/USE,
   CALL, CHECKPOINT, VACUUM, transactions, PIVOT's multi-statements) is
   refused. The statement's syntax tree (``json_serialize_sql``) is then
   walked: table functions must be on an allow-list (no ``read_csv``,
   ``read_parquet``, ``read_json*``, ``read_text``, ``read_blob``, ``glob``,
   ``sqlite_scan``, ``query``...), and tables must be plain names in our
   own schema (no ``FROM '/etc/passwd'``, no other catalog).
2. **A read-only connection**: the copy is opened ``read_only=True``, so no
   statement can write to it whatever the parser said.
3. **A locked, sealed configuration**: ``enable_external_access=false`` (no
   file or network access, no ATTACH), extension auto-install/auto-load
   off, Python replacement scans off (a query must not see this process's
   variables), and then ``lock_configuration=true`` so the query cannot ``SET``
   any of it back.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
from uok.adapters.analytics import schema
from uok.adapters.analytics.copyfile import connect
from uok.domain.errors import InputError

SAFE_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,
}
"""Passed at connect; then :func:`seal` sets the time zone and locks it all."""

ALLOWED_TABLE_FUNCTIONS = frozenset(
    {
        "range",
        "generate_series",
        "unnest",
        "json_each",
        "json_tree",
        "repeat",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_types",
        "duckdb_functions",
        "duckdb_constraints",
        "duckdb_schemas",
        "duckdb_databases",
        "duckdb_settings",
        "pragma_table_info",
        "pragma_show",
        "pragma_version",
        "pragma_database_size",
        "summary",
        "test_all_types",
    }
)
"""Table functions that compute or describe; none reads a file or runs SQL text."""

_SYSTEM_SCHEMAS = frozenset({"information_schema", "pg_catalog"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s", re.IGNORECASE)
_ALLOWED_TYPES = {"SELECT", "EXPLAIN"}


class QueryRefused(InputError):
    """The statement is not a single read-only query over the copy."""


class QueryFailed(InputError):
    """An allowed query that DuckDB could not run (unknown column, bad cast...)."""


def _statement_type(sql: str) -> str:
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise QueryRefused(f"not valid SQL: {_first_line(e)}") from None
    if len(statements) != 1:
        raise QueryRefused(f"exactly one statement is allowed, got {len(statements)}")
    return statements[0].type.name


def _walk(node: Any) -> Iterator[dict]:
    """Every dict in the tree, without recursion (a deeply nested query must
    not exhaust Python's stack)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            yield n
            stack.extend(reversed(list(n.values())))
        elif isinstance(n, list):
            stack.extend(reversed(n))


def seal(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """UTC for TIMESTAMPTZ values (as the log records them), then lock the
    configuration so the query cannot ``SET`` anything back."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")
    return con


def _check_tree(sql: str) -> set[str]:
    """Refuse what the tree shows is not allowed; returns the relations read."""
    with seal(duckdb.connect(":memory:", config=SAFE_CONFIG)) as parser:
        try:
            tree = orjson.loads(parser.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
        except orjson.JSONDecodeError:  # orjson refuses documents nested deeper than 1,024 levels
            raise QueryRefused("the query is nested too deeply (more than about 1,000 levels)") from None
        except duckdb.Error as e:  # the parser's own limits (expression depth, size)
            raise QueryRefused(f"the query cannot be parsed: {_first_line(e)}") from None
    if tree.get("error"):
        raise QueryRefused(f"not a plain query: {tree.get('error_message', 'unparseable')}")
    ctes = {
        entry.get("key", "").lower()
        for node in _walk(tree)
        if isinstance(node.get("cte_map"), dict)
        for entry in node["cte_map"].get("map", [])
    }
    relations: set[str] = set()
    for node in _walk(tree):
        kind = node.get("type")
        if kind == "TABLE_FUNCTION":
            fn = node.get("function") or {}
            name = str(fn.get("function_name", "")).lower()
            if name not in ALLOWED_TABLE_FUNCTIONS or fn.get("schema") or fn.get("catalog"):
                raise QueryRefused(f"table function {name}() is not allowed: queries may only read the event copy")
        elif kind == "BASE_TABLE":
            name = str(node.get("table_name", ""))
            where = str(node.get("schema_name", "")).lower()
            catalog = str(node.get("catalog_name", ""))
            if where in _SYSTEM_SCHEMAS and not catalog:
                continue
            if not _IDENT.match(name) or where not in ("", "main") or catalog:
                raise QueryRefused(
                    f"cannot read {'.'.join(x for x in (catalog, where, name) if x)!r}: "
                    "queries may only read the views of the event copy"
                )
            if name.lower() in ctes:
                continue
            if name.lower() not in _known_relations():
                raise QueryRefused(f"no relation named {name!r}; see `uok sql --schema` or docs/schema.md")
            relations.add(name.lower())
    return relations


def _known_relations() -> frozenset[str]:
    internal = {f"{p}_{t.table}" for t in schema.TYPED for p in ("ev", "mat")} | {
        "raw_events",
        "_uok_copy",
        "_uok_typed",
    }
    return frozenset(schema.PUBLIC_RELATIONS | internal)


def check(sql: str) -> set[str]:
    """Raise :class:`QueryRefused` unless ``sql`` is one read-only query;
    returns the relations of the copy it reads (to catch up their typed
    tables first; a relation missed here costs speed, never correctness)."""
    kind = _statement_type(sql)
    if kind not in _ALLOWED_TYPES:
        raise QueryRefused(f"{kind} statements are not allowed: only a single SELECT/WITH query (or EXPLAIN of one)")
    inner = sql
    if kind == "EXPLAIN":
        inner = _EXPLAIN.sub("", sql, count=1)
        if inner == sql or _statement_type(inner) != "SELECT":
            raise QueryRefused("EXPLAIN is allowed only of a SELECT query")
    return _check_tree(inner)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class QueryResult:
    def __init__(self, columns: list[str], types: list[str], rows: list[tuple]):
        self.columns, self.types, self.rows = columns, types, rows


DEFAULT_TIMEOUT_S = 300.0
DEFAULT_MEMORY_LIMIT = "2GB"


class QueryTimedOut(InputError):
    """The query ran past its time limit and was stopped."""


def run(
    copy: Path, sql: str, *, timeout: float = DEFAULT_TIMEOUT_S, memory_limit: str = DEFAULT_MEMORY_LIMIT
) -> QueryResult:
    """Check ``sql``, then run it on a read-only, sealed connection to ``copy``
    within ``timeout`` seconds and DuckDB's ``memory_limit``.

    The query runs on a worker thread while this thread waits, so Ctrl-C
    (KeyboardInterrupt, exit 130) and the time limit both stop it at once
    with ``interrupt()``, whatever DuckDB is doing."""
    check(sql)
    con = connect(copy, read_only=True, config={**SAFE_CONFIG, "memory_limit": memory_limit})
    query = seal(con.cursor())  # a cursor: DuckDB interrupts a busy cursor, not a busy connection
    outcome: list[Any] = []

    def work() -> None:
        try:
            cur = query.execute(sql)
            rows = cur.fetchall()
            outcome.append((cur.description or [], rows))
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            outcome.append(e)

    worker = threading.Thread(target=work, name="uok-sql-query", daemon=True)
    try:
        worker.start()
        deadline = time.monotonic() + timeout
        try:
            while worker.is_alive():
                worker.join(min(0.1, max(deadline - time.monotonic(), 0.0)))
                if worker.is_alive() and time.monotonic() >= deadline:
                    query.interrupt()
                    worker.join(5)
                    raise QueryTimedOut(f"the query ran longer than {timeout:g} s and was stopped (--timeout)")
        except KeyboardInterrupt:
            query.interrupt()
            worker.join(5)
            raise
        result = outcome[0]
        if isinstance(result, duckdb.PermissionException):  # layer 3 caught what layer 1 let through
            raise QueryRefused(_first_line(result))
        if isinstance(result, duckdb.OutOfMemoryException):
            raise QueryFailed(f"{_first_line(result)} (--memory-limit {memory_limit})")
        if isinstance(result, duckdb.Error):
            raise QueryFailed(_first_line(result))
        if isinstance(result, BaseException):
            raise result
        description, rows = result
        return QueryResult([d[0] for d in description], [str(d[1]) for d in description], rows)
    finally:
        if not worker.is_alive():  # an interrupted cursor may still say busy: the process is ending anyway
            with contextlib.suppress(duckdb.Error):
                query.close()
                con.close()
