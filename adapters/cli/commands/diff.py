"""``uok diff``: what changed between two positions, or between two logs
(a fork and its parent)."""

from __future__ import annotations

import argparse
from pathlib import Path

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "diff",
        description="""
            `uok diff P1 P2`: units whose state changed, new runs and run status changes, turns
            started and finished, breaker changes, gate runs and the cost delta between
            positions P1 and P2 of one log.

            `uok diff --against OTHER_DB`: the first position where the two logs' histories
            differ (found on the hash chain), then the same comparison of their states at
            their heads (or at --at P in both). Nothing is executed.
        """,
        examples="""
            uok diff 100 250
            uok diff --db fork.db --against .uok/events.db
            uok diff --db fork.db --against .uok/events.db --at 180 --json
        """,
    )
    p.add_argument("positions", nargs="*", type=int, metavar="P", help="two positions of the log (P1 P2)")
    p.add_argument("--against", metavar="OTHER_DB", help="compare this log with another one")
    p.add_argument("--at", type=int, metavar="P", help="with --against: compare both logs' states at P")
    p.add_argument("--json", action="store_true", help="one JSON object: the differences")
    p.set_defaults(func=diff)


def diff(args: argparse.Namespace) -> int:
    from uok.adapters.cli.commands.state import view_at
    from uok.replay.timetravel import diff_views

    if args.against:
        if args.positions:
            raise InputError("give either two positions or --against OTHER_DB, not both")
        out = _against(args)
    else:
        if len(args.positions) != 2:
            raise InputError("give two positions (uok diff P1 P2), or --against OTHER_DB")
        if args.at is not None:
            raise InputError("--at only goes with --against")
        p1, p2 = args.positions
        with read_models(args, readonly=True) as rm:
            rm.catch_up()
            rm.check_position(p1)
            rm.check_position(p2)
            out = diff_views(view_at(rm, p1), view_at(rm, p2))
    if args.json:
        emit(out)
    else:
        print_diff(out)
    return 0


def _against(args: argparse.Namespace) -> dict:
    from uok.adapters.cli.commands.state import view_at
    from uok.adapters.stores import locate_log
    from uok.replay.timetravel import diff_views, first_difference

    from uok import bootstrap

    other_path = locate_log(args.against)
    if isinstance(other_path, Path) and not other_path.exists():
        raise InputError(f"no event log at {other_path}")
    with read_models(args, readonly=True) as a, bootstrap.read_models(other_path, readonly=True) as b:
        a.catch_up()
        b.catch_up()
        ha, hb = a.head(), b.head()
        first = first_difference(a.pstore.hash_at, ha, b.pstore.hash_at, hb)
        if args.at is not None:
            a.check_position(args.at, "--at")
            b.check_position(args.at, "--at (in OTHER_DB)")
        pa = args.at if args.at is not None else ha
        pb = args.at if args.at is not None else hb
        out = diff_views(view_at(a, pa), view_at(b, pb))
        out["logs"] = {
            "a": a.store.location,
            "b": b.store.location,
            "head_a": ha,
            "head_b": hb,
            "common_history": (first - 1) if first is not None else min(ha, hb),
            "first_difference": first,
            "event_a": _topic_at(a.store, first),
            "event_b": _topic_at(b.store, first),
        }
    return out


def _topic_at(store, position: int | None) -> str | None:
    if position is None:
        return None
    rows = store.query("SELECT topic FROM events WHERE position = ?", (position,))
    return rows[0][0] if rows else None


def print_diff(d: dict) -> None:
    from uok.replay.timetravel import is_empty

    logs = d.get("logs")
    if logs:
        if logs["first_difference"] is None:
            print(f"the logs are identical ({logs['head_a']} events)")
        else:
            print(
                f"histories are identical up to position {logs['common_history']}; first difference at "
                f"{logs['first_difference']}: {logs['event_a'] or '(end of log)'} in {logs['a']} vs "
                f"{logs['event_b'] or '(end of log)'} in {logs['b']}"
            )
        print(f"states compared: {logs['a']} at {d['from']}  ->  {logs['b']} at {d['to']}")
    else:
        print(f"changes from position {d['from']} to {d['to']}:")
    if is_empty(d):
        print("  no change")
        return
    for r in d["new_runs"]:
        print(f"  new run {r}")
    for r in d["runs_missing"]:
        print(f"  run {r} not present on the right")
    for c in d["run_status_changes"]:
        print(f"  run {c['run_id']}: {c['from']} -> {c['to']}")
    for u in d["units"]:
        print(
            f"  unit {u['plan_id']}/{u['unit_id']}: {u['from'] or '∅'} -> {u['to'] or '∅'} "
            f"(attempt {u['attempt']}, dispatches {u['dispatches']})"
        )
    if d["turns_started"]:
        print(f"  turns now in flight: {', '.join(d['turns_started'])}")
    if d["turns_finished"]:
        print(f"  turns no longer in flight: {', '.join(d['turns_finished'])}")
    for b in d.get("breakers", []):
        print(f"  breaker {b['gate_id']}: {b['from']} -> {b['to']}")
    for g, n in d.get("gate_runs", {}).items():
        print(f"  gate {g}: {n:+d} runs")
    delta = d.get("cost_delta")
    if delta and any(delta.values()):
        print(f"  cost: ${delta['usd']:+.4f}, {delta['input_tokens']:+,} in / {delta['output_tokens']:+,} out tokens")
