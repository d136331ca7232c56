"""What every sub-command shares: where the log is, opening it, printing errors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from uok.errors import InputError

DEFAULT_DB = Path(".uok") / "events.db"


def add_db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        metavar="PATH",
        help=f"event log file (default: $UOK_DB, else {DEFAULT_DB} under the working directory)",
    )


def db_path(args: argparse.Namespace) -> Path:
    if getattr(args, "db", None):
        return Path(args.db)
    env = os.environ.get("UOK_DB")
    return Path(env) if env else DEFAULT_DB


def open_store(args: argparse.Namespace, *, create: bool = False, synchronous: str = "FULL"):
    """Open the event log named by ``--db``/``UOK_DB``; a missing log is an
    error unless ``create`` (only commands that write may create one)."""
    from uok.adapters.sqlite_store import SqliteEventStore

    path = db_path(args)
    if not create and not path.exists():
        raise InputError(f"no event log at {path} (run `uok run PLAN` first, or pass --db)")
    try:
        return SqliteEventStore(path, synchronous=synchronous)
    except OSError as exc:  # a directory, no permission, a missing parent we may not create
        raise InputError(f"cannot open event log {path}: {exc.strerror or exc}") from None


def open_log(args: argparse.Namespace, *, create: bool = False, synchronous: str = "FULL"):
    from uok.adapters.eventlog import EventLog

    return EventLog(open_store(args, create=create, synchronous=synchronous))


def refuse_to_replace_a_log(path: Path, option: str) -> None:
    """An output option (``--out``, ``--copy``) must never replace or open an
    existing SQLite file: it may be an event log (even this command's
    ``--db``), and writing an export or a DuckDB copy over it destroys it."""
    try:
        with open(path, "rb") as f:
            header = f.read(16)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return
    if header == b"SQLite format 3\x00":
        raise InputError(f"{option} {path} is a SQLite database (an event log?); refusing to overwrite it")


def err(message: str) -> None:
    """One line on stderr, prefixed ``uok: `` once (a message that already
    carries the prefix, e.g. from SQLite's triggers, is not prefixed again)."""
    print(f"uok: {message.removeprefix('uok: ')}", file=sys.stderr)


def print_plans(plans: dict) -> None:
    """Each plan's unit counts by state, then one line per unit (``status`` and ``state``)."""
    for plan_id, p in plans.items():
        counts = ", ".join(f"{s}={n}" for s, n in p["by_state"].items())
        print(f"plan {plan_id}: {counts}")
        for unit_id, u in p["units"].items():
            why = f"  ({u['reason']})" if u["reason"] and u["state"] != "completed" else ""
            print(f"  {u['state']:<18} {unit_id}  attempt={u['attempt']} dispatches={u['dispatches']}{why}")
