"""``uok status``: runs and units by state, from the log's read models."""

from __future__ import annotations

import argparse
import sys
import time

from uok.adapters.cli.common import print_plans
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "status",
        description="""
            Show the runs (status, pid, times) and plans' units grouped by state,
            computed from the event log's read models, and the `uok worker`s of the open runs
            (none open: of the last run): each one's host and pid, what it claimed, reported and
            lost, and the leases it holds. Reads only; works from any
            sub-directory of a project (the nearest .uok/events.db).
            By default a summary: how many runs by status, the open runs and the last 5, and the
            units of the open runs' plans and of the latest run's plan; --all lists every run and
            every plan's units (a long history has tens of thousands), as --json always does.
        """,
        examples="""
            uok status
            uok status --all                   # every run and every unit of every plan
            uok status --json | jq '.runs[] | select(.status == "open")'
            uok --db /tmp/other.db status
            uok status --watch                 # redraw as a live run goes, until no run is open
            uok status --watch 0.5 --json      # one JSON object per change
        """,
    )
    p.add_argument("--all", action="store_true", help="every run and every plan's units, not the summary of the latest")
    p.add_argument("--json", action="store_true", help="one JSON object: position, every run, every plan's units")
    p.add_argument(
        "--watch",
        nargs="?",
        const=1.0,
        type=float,
        metavar="SECONDS",
        help="follow a live run: look every SECONDS (default 1), show the status again whenever the log grew, "
        "stop once no run is open (Ctrl-C stops too)",
    )
    p.set_defaults(func=status)


def status(args: argparse.Namespace) -> int:
    from uok import bootstrap

    target = getattr(args, "db", None)
    summary = not (args.all or args.json)
    if args.watch is None:
        _show(bootstrap.status(target, summary=summary), args.json)
        return 0
    if not args.watch > 0:
        raise InputError(f"--watch needs a number of seconds > 0, got {args.watch:g}")
    shown = -1
    try:
        while True:
            snap = bootstrap.status(target, summary=summary)
            if snap["position"] != shown:
                if not args.json and sys.stdout.isatty():
                    print("\033[H\033[2J", end="")  # redraw in place on a terminal
                _show(snap, args.json)
                sys.stdout.flush()
                shown = snap["position"]
            if not any(r["status"] == "open" for r in snap["runs"]):
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 130


def _show(snap: dict, as_json: bool) -> None:
    if as_json:
        emit(snap)
        return
    print(f"log head: position {snap['position']}")
    if "summary" in snap and len(snap["runs"]) < snap["summary"]["runs"]:
        s = snap["summary"]
        counts = ", ".join(f"{k}={n:,}" for k, n in s["runs_by_status"].items())
        print(f"runs: {s['runs']:,} ({counts}); the latest and every open one (--all: every run):")
    else:
        print("runs:")
    for r in snap["runs"]:
        modes = f" modes={r['work_mode']}/{r['model_mode']}" if r.get("work_mode") else ""
        print(f"  {r['run_id']}  {r['status']:<10} plan={r['plan_id']} pid={r['pid']} entered={r['entered_at']}{modes}")
    print_plans(snap["plans"])
    hidden = snap["summary"]["plans"] - len(snap["plans"]) if "summary" in snap else 0
    if hidden:
        print(f"({hidden:,} other plans not shown: --all lists every unit)")
    if snap.get("workers"):
        print("workers:")
    for w in snap.get("workers", ()):
        gone = f"left {w['left_at']} ({w['left_because']})" if w["left_at"] else f"last seen {w['last_seen']}"
        print(
            f"  {w['worker']}  run={w['run_id']} host={w['host']} pid={w['pid']}  claimed={w['claimed']} "
            f"reported={w['reported']} lost={w['lost']}  {gone}"
        )
        for lease in w["leases"]:
            state = "EXPIRED" if lease["expired"] else "expires"
            print(
                f"    lease: unit {lease['unit_id']} turn {lease['turn_id']} epoch {lease['epoch']} {state} {lease['expires_at']}"
            )
