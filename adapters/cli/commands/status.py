"""``uok status``: runs and units by state, from the log's read models."""

from __future__ import annotations

import argparse

from uok.adapters.cli.common import print_plans
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "status",
        description="""
            Show every run (status, pid, times) and each plan's units grouped by state,
            computed from the event log's read models. Reads only; works from any
            sub-directory of a project (the nearest .uok/events.db).
        """,
        examples="""
            uok status
            uok status --json | jq '.runs[] | select(.status == "open")'
            uok --db /tmp/other.db status
        """,
    )
    p.add_argument("--json", action="store_true", help="one JSON object: position, runs, plans")
    p.set_defaults(func=status)


def status(args: argparse.Namespace) -> int:
    from uok import bootstrap

    snap = bootstrap.status(getattr(args, "db", None))
    if args.json:
        emit(snap)
        return 0
    print(f"log head: position {snap['position']}")
    print("runs:")
    for r in snap["runs"]:
        print(f"  {r['run_id']}  {r['status']:<10} plan={r['plan_id']} pid={r['pid']} entered={r['entered_at']}")
    print_plans(snap["plans"])
    return 0
