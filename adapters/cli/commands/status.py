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


def snapshot(args: argparse.Namespace) -> dict:
    """Runs and units by state at the head, from the stored read models
    (``runs``, ``units``) folded forward to the head: only what was appended
    since they were last caught up is read, and nothing is written (status
    must not touch the file, least of all a damaged one)."""
    from uok.adapters.cli.readmodels import read_models
    from uok.replay.timetravel import system_view

    with read_models(args) as rm:
        head = rm.head()
        view = system_view(rm.runner.state_at(head, ["runs", "units", "turns"]), head)
    runs = [
        {
            "run_id": rid,
            "plan_id": r["plan_id"],
            "status": r["status"],
            "pid": r["pid"],
            "entered_at": r["entered_at"],
            "exited_at": r["exited_at"],
        }
        for rid, r in view["runs"].items()
    ]
    return {"position": head, "runs": runs, "plans": view["plans"]}


def status(args: argparse.Namespace) -> int:
    snap = snapshot(args)
    if args.json:
        emit(snap)
        return 0
    print(f"log head: position {snap['position']}")
    print("runs:")
    for r in snap["runs"]:
        print(f"  {r['run_id']}  {r['status']:<10} plan={r['plan_id']} pid={r['pid']} entered={r['entered_at']}")
    print_plans(snap["plans"])
    return 0
