"""``uok replay RUN_ID``: re-drive today's kernel over a recorded run and
report the first decision that differs. Executes nothing, writes nothing."""

from __future__ import annotations

import argparse

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit_lines

from uok.errors import EXIT_INTEGRITY, InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "replay",
        description="""
            Fold everything before the run, then feed each of the run's recorded observations
            to today's kernel and compare its decisions with the recorded ones, in order. No
            command or gate is executed and nothing is written.

            Exit codes: 0 no divergence; 3 divergence (the first divergent position, expected
            and actual event types, a field-by-field diff and the unit/turn/gate involved are
            printed); 2 unknown run.
        """,
        examples="""
            uok replay r20260101120000-abc123
            uok replay --all
            uok replay --all --json | jq -c '{run_id, diverged}'
        """,
    )
    p.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run to replay (see `uok status`)")
    p.add_argument("--all", action="store_true", help="replay every run of the log, in order")
    p.add_argument("--json", action="store_true", help="NDJSON: one report object per run")
    p.set_defaults(func=replay)


def replay(args: argparse.Namespace) -> int:
    from uok.replay.replayer import replay_run, run_ids

    if bool(args.run_id) == bool(args.all):
        raise InputError("give a RUN_ID, or --all")
    log = open_log(args, readonly=True)
    try:
        ids = run_ids(log) if args.all else [args.run_id]
        reports = []
        for rid in ids:
            reports.append(replay_run(log, rid))  # RunNotFound: exit 2
    finally:
        log.store.close()
    diverged = any(r.diverged for r in reports)
    if args.json:
        emit_lines(reports)
    else:
        for r in reports:
            print_report(r)
    return EXIT_INTEGRITY if diverged else 0


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def print_report(r) -> None:
    if not r.diverged:
        print(
            f"run {r.run_id}: replayed {r.events_replayed} events, no divergence "
            f"({r.observations} observations, {r.decisions} decisions; status {r.status})"
        )
        return
    d = r.divergence
    print(f"run {r.run_id}: DIVERGENCE at position {d.position} ({d.kind}) after replaying {r.events_replayed} events")
    if d.observation_type:
        print(f"  while handling {d.observation_type} at position {d.observation_position}")
    print(f"  expected (recorded): {d.expected_type or '(nothing)'}")
    print(f"  actual (today's kernel): {d.actual_type or '(nothing)'}")
    involved = ", ".join(f"{k} {v}" for k, v in (("unit", d.unit_id), ("turn", d.turn_id), ("gate", d.gate_id)) if v)
    if involved:
        print(f"  involved: {involved}")
    if d.error:
        print(f"  error: {d.error}")
    for f in d.fields:
        if f.missing == "actual":
            print(f"  {f.path}: recorded {_show(f.expected)}, absent now")
        elif f.missing == "expected":
            print(f"  {f.path}: not recorded, now {_show(f.actual)}")
        else:
            print(f"  {f.path}: expected {_show(f.expected)}, actual {_show(f.actual)}")
