"""``uok status``: runs and units by state, folded from the log."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import orjson

from adapters.cli.common import add_db_argument, open_log, print_plans


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="runs and units by state", description="Show every run (status, pid, times) and each plan's units grouped by state, computed from the event log.")
    add_db_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=status)


def snapshot(log) -> dict:
    from adapters.runner import fold_log
    from domain.kernel import Kernel

    k = Kernel()
    head = fold_log(log, k)
    runs = [
        {
            "run_id": r.run_id,
            "plan_id": r.plan_id,
            "status": r.status,
            "pid": r.pid,
            "entered_at": r.entered_at.isoformat(),
            "exited_at": r.exited_at.isoformat() if r.exited_at else None,
        }
        for r in k.runs.values()
    ]
    plans: dict[str, dict] = {}
    for (plan_id, unit_id), rec in sorted(k.units.items()):
        p = plans.setdefault(plan_id, {"by_state": Counter(), "units": {}})
        p["by_state"][rec.display_state] += 1
        p["units"][unit_id] = {"state": rec.display_state, "attempt": rec.attempt, "dispatches": rec.dispatches,
                               "failure_class": rec.failure_class, "reason": rec.reason}
    for p in plans.values():
        p["by_state"] = dict(sorted(p["by_state"].items()))
    return {"position": head, "runs": runs, "plans": plans}


def status(args: argparse.Namespace) -> int:
    log = open_log(args)
    snap = snapshot(log)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    print(f"log head: position {snap['position']}")
    print("runs:")
    for r in snap["runs"]:
        print(f"  {r['run_id']}  {r['status']:<10} plan={r['plan_id']} pid={r['pid']} entered={r['entered_at']}")
    print_plans(snap["plans"])
    return 0
