"""``uok sql``: ask the whole history a question in SQL (DuckDB).

The log itself is never queried: a DuckDB copy beside it (``<db>.duckdb``)
is brought up to date first (only events after its tracked position are
loaded), then the query runs read-only. See ``docs/schema.md``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import decimal
import sys
from pathlib import Path

import orjson
from uok.adapters.cli.common import log_target, open_store, refuse_to_replace_a_log, shown
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.interrupt import ctrl_c_leaves_at_once
from uok.adapters.cli.output import err

from uok.errors import InputError, IntegrityFailure

BUSY_WAIT_S = 1.0
"""How long ``uok sql`` waits for another process holding the copy before it
answers from the copy as it stands (a long query never queues the next one)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "sql",
        description="""
            Run one read-only SQL query over the whole event history. Views: events, runs,
            units, unit_transitions, turns, executions, gate_runs, breaker_transitions, costs,
            messages (columns in docs/schema.md, or `uok sql --schema`).
        """,
        examples="""
            uok sql "SELECT state, count(*) FROM units GROUP BY state"
            uok sql "SELECT gate_id, outcome, count(*) FROM gate_runs GROUP BY ALL" --format csv
            uok sql "SELECT type, count(*) FROM events GROUP BY type ORDER BY 2 DESC" --json
            uok sql --schema
        """,
        notes="""
            Only one SELECT/WITH query (or EXPLAIN of one) is accepted. Statements that
            write, ATTACH, COPY, EXPORT, INSTALL/LOAD, PRAGMA, SET, or read files
            (read_csv, read_parquet, glob, 'path' in FROM, ...) are refused (exit 2).
        """,
    )
    p.add_argument("query", nargs="?", help="the SQL query (one SELECT / WITH / EXPLAIN statement)")
    p.add_argument("--copy", metavar="PATH", help="the DuckDB copy (default: <db>.duckdb beside the log)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default table)")
    p.add_argument("--json", action="store_true", help="same as --format json: NDJSON, one object per row")
    p.add_argument("--schema", action="store_true", help="list the views and their columns, then exit")
    p.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="stop the query after SECONDS (default $UOK_SQL_TIMEOUT, else 300); a stopped query exits 2",
    )
    p.add_argument(
        "--memory-limit",
        metavar="SIZE",
        help="DuckDB's memory limit for the query, e.g. 500MB (default $UOK_SQL_MEMORY_LIMIT, else 2GB)",
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="report on stderr what the refresh loaded (positions, counts, time)",
    )
    p.set_defaults(func=sql)


def sql(args: argparse.Namespace) -> int:
    import duckdb
    from uok.adapters import analytics

    query = args.query
    if args.schema:
        query = (
            "SELECT table_name AS relation, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN (" + ", ".join(f"'{v}'" for v in sorted(analytics.schema.VIEWS)) + ") "
            "ORDER BY table_name, ordinal_position"
        )
    if not query:
        raise InputError('give a query, e.g. uok sql "SELECT count(*) FROM events" (or --schema)')
    try:
        relations = analytics.check(query)  # refuse before touching anything
    except analytics.QueryRefused as e:
        raise InputError(f"query refused: {e}") from None
    from uok.domain.log.chain import ChainBroken

    db = log_target(args)  # a file, or a postgresql:// URL (its copy: .uok/pg-<digest>.duckdb)
    open_store(args, readonly=True).close()  # a missing, foreign or damaged log fails here, with the usual message
    copy = Path(args.copy) if args.copy else analytics.default_path(db)
    refuse_to_replace_a_log(copy, "--copy")  # DuckDB must never open the SQLite log as its copy
    try:
        r = analytics.refresh(db, copy, typed=analytics.schema.typed_needed(relations), wait=BUSY_WAIT_S)
    except analytics.CopyBusy:
        # a long query holds the copy: answer from it as it stands instead of queueing behind it
        err(f"the copy {copy} is in use by another query; answering from it as last refreshed (may lag the log)")
        r = None
    except ChainBroken as e:
        raise IntegrityFailure(f"{shown(db)}: {e}; nothing was queried (see `uok verify`)") from None
    except analytics.CopyError as e:
        raise IntegrityFailure(f"{e} (check the log with `uok verify`)") from None
    except (duckdb.Error, OSError) as e:  # the copy's file: permissions, disk, a foreign file at that path
        raise InputError(
            f"cannot bring the analytical copy {copy} up to date: {_first_line(e)} "
            "(delete it to rebuild, or choose another path with --copy)"
        ) from None
    if args.verbose and r is not None:
        why = f", rebuilt: {r.rebuilt}" if r.rebuilt else ""
        typed = ", ".join(f"{k}+{v}" for k, v in r.materialized.items() if v)
        err(
            f"copy {r.path}: tracked position {r.before} -> {r.position}, loaded {r.loaded} new events "
            f"in {r.seconds:.3f}s{why}" + (f"; typed rows caught up: {typed}" if typed else "")
        )
    timeout, memory = _limits(args)
    try:
        # Ctrl-C ends the process at once (exit 130): the copy is open read-only
        # while the query runs, so nothing is lost (see adapters/cli/interrupt.py:
        # DuckDB can take a KeyboardInterrupt as `RuntimeError: Query interrupted`,
        # and an interrupt() sent before the query has started is lost)
        with ctrl_c_leaves_at_once():
            result = analytics.run(copy, query, timeout=timeout, memory_limit=memory)
    except analytics.QueryRefused as e:
        raise InputError(f"query refused: {e}") from None
    except analytics.QueryFailed as e:
        raise InputError(f"query failed: {e}") from None
    fmt = "json" if args.json else args.format
    {"table": _table, "csv": _csv, "json": _json}[fmt](result)
    return 0


def _limits(args: argparse.Namespace) -> tuple[float, str]:
    """The query's time and memory limits: the option, else the environment, else the defaults."""
    import os
    import re

    from uok.adapters import analytics

    raw = args.timeout if args.timeout is not None else os.environ.get("UOK_SQL_TIMEOUT")
    try:
        timeout = analytics.DEFAULT_TIMEOUT_S if raw in (None, "") else float(raw)
    except ValueError:
        raise InputError(f"UOK_SQL_TIMEOUT must be a number of seconds, got {raw!r}") from None
    if not (timeout > 0 and timeout != float("inf")):
        raise InputError(f"--timeout must be a number of seconds > 0, got {raw}")
    memory = args.memory_limit or os.environ.get("UOK_SQL_MEMORY_LIMIT") or analytics.DEFAULT_MEMORY_LIMIT
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", memory, re.IGNORECASE):
        raise InputError(f"--memory-limit must be a size such as 500MB or 2GB, got {memory!r}")
    return timeout, memory


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _cell(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _table(result) -> None:
    cells = [[_cell(v) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    widths = [min(w, 80) for w in widths]

    def line(values):
        return "  ".join(
            v[:w].ljust(w) if len(v) <= w else v[: w - 1] + "…" for v, w in zip(values, widths, strict=False)
        ).rstrip()

    out = [line(result.columns), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    out.append(f"({len(cells)} row{'s' if len(cells) != 1 else ''})")
    sys.stdout.write("\n".join(out) + "\n")


def _csv(result) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(result.columns)
    for row in result.rows:
        w.writerow(["" if v is None else _cell(v) for v in row])


def _default(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    return str(v)


def _json(result) -> None:
    """NDJSON: one object per row (docs/cli.md); JSON columns (payloads) are
    embedded as JSON, not as strings holding JSON."""
    json_cols = {i for i, t in enumerate(result.types) if t == "JSON"}
    out = sys.stdout.buffer
    for row in result.rows:
        record = {
            c: (orjson.Fragment(v) if i in json_cols and v is not None else v)
            for i, (c, v) in enumerate(zip(result.columns, row, strict=False))
        }
        out.write(orjson.dumps(record, default=_default) + b"\n")
