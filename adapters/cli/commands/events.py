"""``uok events``: the raw log, as NDJSON (orjson) or one line per event."""

from __future__ import annotations

import argparse
import sys

import orjson
from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "events",
        description="""
            Print events in position order, one line each: position, time, type and a summary.
            With --json: one JSON object per line (NDJSON) with position, stream, version,
            topic, hash (hex) and the event itself.
        """,
        examples="""
            uok events
            uok events --after 100 --run r20260101120000-abc123
            uok events --json | jq -c 'select(.topic | startswith("UnitTransitioned"))'
            uok events --follow --db 'postgresql://uok@db.internal/uok'
        """,
    )
    p.add_argument("--run", metavar="ID", help="only events authored by this run")
    p.add_argument("--after", type=int, default=0, metavar="P", help="only events after position P")
    p.add_argument("--json", action="store_true", help="NDJSON: one object per event")
    p.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="keep printing events as they are committed, until Ctrl-C (PostgreSQL: woken by LISTEN/NOTIFY)",
    )
    p.set_defaults(func=events)


def events(args: argparse.Namespace) -> int:
    log = open_log(args, readonly=True)
    if args.follow:
        from uok.adapters.cli.interrupt import ctrl_c_leaves_at_once
        from uok.adapters.follow import follow

        with ctrl_c_leaves_at_once():  # a follower only reads: Ctrl-C ends it at once, exit 130
            _print(args, follow(log, args.after))
        return 0
    if args.run is not None:
        from uok.replay.replayer import entered_position

        entered_position(log.store, args.run)  # an unknown run is exit 2 (as for uok replay), not silence
    _print(args, log.records(args.after))
    return 0


def _print(args: argparse.Namespace, records) -> None:
    from uok.domain.log import codec

    out = sys.stdout.buffer
    for r in records:
        e = codec.decode(r.topic, r.payload)
        if args.run is not None and e.run_id != args.run:
            continue
        if args.json:  # the event as decoded, every field (the stored payload leaves defaults out)
            out.write(
                orjson.dumps(
                    {
                        "position": r.position,
                        "stream": r.stream,
                        "version": r.version,
                        "topic": r.topic,
                        "hash": r.hash.hex(),
                        "event": codec.to_builtins(e),
                    }
                )
                + b"\n"
            )
        else:
            out.write(
                f"{r.position:>7} {e.at.isoformat(timespec='milliseconds')} {type(e).__name__:<20} {summary(e)}\n".encode()
            )
        if args.follow:
            out.flush()


def summary(e) -> str:
    from uok.domain import events as ev

    if isinstance(e, ev.UnitTransitioned):
        return f"{e.unit_id}: {e.from_state or '∅'} -> {e.to_state} (attempt {e.attempt})" + (
            f" {e.reason}" if e.reason else ""
        )
    if isinstance(e, ev.UnitRequeued):
        return f"{e.unit_id} ({e.was}) queued again, {e.cause}: {e.reason}" + (f" (by {e.by})" if e.by else "")
    if isinstance(e, ev.ProgressReported):
        return f"{e.turn_id} {e.unit_id}: {e.message}"
    if isinstance(e, ev.KernelExited):
        return f"{e.run_id} {e.status} completed={e.units_completed} failed={e.units_failed} {e.error}".rstrip()
    if isinstance(e, ev.TurnFinished):
        return f"{e.turn_id} {e.unit_id} {e.status} {e.failure_class}"
    if isinstance(e, ev.TurnStarted):
        return f"{e.turn_id} {e.unit_id} attempt {e.attempt}"
    if isinstance(e, ev.PhaseResult):
        return f"{e.turn_id} {e.phase}: {e.action}"
    if isinstance(e, ev.ExecutionFinished):
        return (
            f"{e.turn_id} {e.unit_id} exit={e.exit_code} {e.duration_ms}ms"
            + (" timed out" if e.timed_out else "")
            + (f" {e.error}" if e.error else "")
        )
    for field in ("turn_id", "unit_id", "recovered_run", "error"):
        if getattr(e, field, None):
            return f"{field}={getattr(e, field)}"
    return e.run_id
