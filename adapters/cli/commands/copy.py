"""``uok copy --from SRC --to DST``: move a log between stores (SQLite file
<-> PostgreSQL), every position and hash preserved. See docs/scale-out.md."""

from __future__ import annotations

import argparse
import sys
import time

from uok.adapters.cli.common import shown
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "copy",
        description="""
            Append every event of SRC to DST in position order, byte for byte: the same
            streams, versions, topics, payloads, positions and chain hashes. SRC and DST are
            event log files or postgresql://user@host/dbname[?schema=NAME] URLs. DST must hold
            no events, or exactly the first events of SRC (an interrupted copy continues where
            it stopped). Every batch is checked: DST recomputes each hash and its head must
            equal SRC's hash at that position, so a damaged SRC stops the copy (exit 3).
            Read models are not copied: they are rebuilt from the log.
        """,
        examples="""
            uok copy --from .uok/events.db --to 'postgresql://uok@db.internal/uok'
            uok copy --from 'postgresql://uok@db.internal/uok?schema=team_a' --to backup.db
            uok verify --db 'postgresql://uok@db.internal/uok'
        """,
        log=False,
    )
    p.add_argument("--from", dest="source", required=True, metavar="SRC", help="the log to copy (must exist)")
    p.add_argument("--to", dest="destination", required=True, metavar="DST", help="the log to write (created)")
    p.add_argument("--json", action="store_true", help="one JSON object: what was copied, the head hash")
    p.set_defaults(func=copy)


def copy(args: argparse.Namespace) -> int:
    from uok.adapters.log_copy import copy_log
    from uok.adapters.stores import locate_log, open_event_store

    source, destination = locate_log(args.source), locate_log(args.destination)
    if shown(source) == shown(destination):
        raise InputError("--from and --to name the same log")
    src = open_event_store(source)
    try:
        dst = open_event_store(destination, create=True)
        try:
            if src.location == dst.location:
                raise InputError("--from and --to name the same log")
            started = time.perf_counter()
            result = copy_log(src, dst, progress=_progress if sys.stderr.isatty() and not args.json else None)
            elapsed = time.perf_counter() - started
        finally:
            dst.close()
    finally:
        src.close()
    if args.json:
        summary = {k: getattr(result, k) for k in result.__struct_fields__}
        emit({"from": shown(source), "to": shown(destination), **summary, "seconds": round(elapsed, 3)})
    else:
        resumed = f" (it already held the first {result.resumed_from})" if result.resumed_from else ""
        print(
            f"copied {result.copied} events to {shown(destination)}{resumed}: positions 1..{result.position}, "
            f"head hash {result.head_hash[:16]}… identical to the source ({elapsed:.2f}s)"
        )
    return 0


def _progress(done: int, total: int) -> None:
    print(f"\r  {done}/{total} events", end="" if done < total else "\n", file=sys.stderr, flush=True)
