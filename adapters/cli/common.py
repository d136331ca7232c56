"""What several sub-commands share: the log they name, guarding outputs,
printing plans."""

from __future__ import annotations

import argparse
from pathlib import Path

from uok.errors import InputError


def log_target(args: argparse.Namespace):
    """The log the command means (``--db`` before or after the command,
    else ``$UOK_DB``, else the nearest ``.uok/events.db`` upward, see
    :func:`uok.adapters.stores.locate_log`)."""
    from uok.adapters.stores import locate_log

    return locate_log(getattr(args, "db", None))


def shown(target: str | Path) -> str:
    """A log target as printed: a path, or a URL with its password masked."""
    from uok.adapters.postgres.target import redact

    return str(target) if isinstance(target, Path) else redact(target)


def db_path(args: argparse.Namespace) -> Path:
    """The log's file path (for commands that need the file itself: sql, doctor)."""
    target = log_target(args)
    if not isinstance(target, Path):
        raise InputError(f"this command needs an event log file, not {shown(target)}")
    return target


def open_store(args: argparse.Namespace, *, create: bool = False, readonly: bool = False, synchronous: str = "FULL"):
    """The store of the log the command names, built by the composition
    root; a missing log is an error unless ``create`` (only commands that
    write may create one). Reading commands pass ``readonly``: the log is
    opened read-only (immutable on read-only storage) and no byte of its
    file or ``-wal`` changes."""
    from uok import bootstrap

    return bootstrap.open_store(getattr(args, "db", None), create=create, readonly=readonly, synchronous=synchronous)


def open_log(args: argparse.Namespace, *, create: bool = False, readonly: bool = False, synchronous: str = "FULL"):
    from uok import bootstrap

    return bootstrap.open_log(getattr(args, "db", None), create=create, readonly=readonly, synchronous=synchronous)


def read_models(args: argparse.Namespace, **kw):
    """The read models of the log the command names (a context manager;
    ``readonly=True`` for reading commands)."""
    from uok import bootstrap

    return bootstrap.read_models(getattr(args, "db", None), **kw)


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


def print_plans(plans: dict) -> None:
    """Each plan's unit counts by state, then one line per unit (``status`` and ``state``)."""
    for plan_id, p in plans.items():
        counts = ", ".join(f"{s}={n}" for s, n in p["by_state"].items())
        print(f"plan {plan_id}: {counts}")
        for unit_id, u in p["units"].items():
            why = f"  ({u['reason']})" if u["reason"] and u["state"] != "completed" else ""
            print(f"  {u['state']:<18} {unit_id}  attempt={u['attempt']} dispatches={u['dispatches']}{why}")
