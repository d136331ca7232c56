"""``uok fork RUN_ID --at P --out NEW_DB``: a new log sharing a run's
history up to P, that ``uok run`` can continue."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from uok.adapters.cli.common import open_store, shown
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "fork",
        description="""
            Write NEW_DB whose events 1..P are byte-identical copies of the log's (same
            positions, streams, versions, topics, payloads and chain hashes), followed by one
            RunForked event naming the parent, the run, P and the parent's hash at P. Runs open
            at P are detached from their processes, so `uok run PLAN --db NEW_DB` closes them as
            recovered and continues from that history. Compare the two with
            `uok diff --db NEW_DB --against PARENT`.
        """,
        examples="""
            uok fork r20260101120000-abc123 --at 180 --out /tmp/what-if.db
            uok run plan.toml --db /tmp/what-if.db
            uok diff --db /tmp/what-if.db --against .uok/events.db
        """,
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run to fork from (it must have entered by P)")
    p.add_argument("--at", type=int, required=True, metavar="P", help="last position to copy")
    p.add_argument(
        "--out",
        required=True,
        metavar="NEW_DB",
        help="the new log: a file that must not exist, or a postgresql:// URL whose schema holds no events",
    )
    p.add_argument("--json", action="store_true", help="one JSON object: out and the fork's summary")
    p.set_defaults(func=fork)


def fork(args: argparse.Namespace) -> int:
    from uok.adapters.stores import locate_log, open_event_store
    from uok.replay.fork import ForkError, ForkIntegrityError, fork_log
    from uok.replay.replayer import entered_position

    out = locate_log(args.out)
    if isinstance(out, Path):
        for p in (out, out.with_name(out.name + "-wal")):
            if p.exists():
                raise InputError(f"{p} already exists; fork writes a new log")
    parent = open_store(args, readonly=True)  # the parent is only read
    try:
        if parent.location in (shown(out), str(out.absolute()) if isinstance(out, Path) else ""):
            raise InputError("--out must differ from the parent log")
        head = parent.head()[0]
        if not 1 <= args.at <= head:
            raise InputError(f"--at {args.at} is outside the log (positions 1..{head})")
        entered_position(parent, args.run_id)  # refuse (RunNotFound, exit 2) before creating the file
        child = open_event_store(out, create=True, synchronous="NORMAL")
        try:
            result = fork_log(
                parent, child, run_id=args.run_id, position=args.at, parent_path=parent.location, now=datetime.now(UTC)
            )
        except (ForkError, ForkIntegrityError):  # exit 2 / exit 3; never leave half a fork behind
            child.close()
            _remove(out)
            raise
        child.close()
    finally:
        parent.close()
    if args.json:
        emit({"out": shown(out), **{k: getattr(result, k) for k in result.__struct_fields__}})
    else:
        print(
            f"forked {args.run_id} at position {result.position} into {shown(out)} "
            f"(hash {result.head_hash[:16]}…; RunForked at {result.forked_position}"
            + (f"; detached open runs: {', '.join(result.open_runs)}" if result.open_runs else "")
            + ")"
        )
    return 0


def _remove(path: Path | str) -> None:
    """Delete a half-written fork file. A PostgreSQL target is left as it
    is: append-only triggers refuse deleting the copied events (and a fork
    only ever goes into a schema holding no events)."""
    if not isinstance(path, Path):
        return
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)
