"""``uok parity``: kernel enter/exit parity (behaviour §7), with a live pid probe."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "parity",
        description="""
            Pair every kernel entry with its exit (KernelExited, or RunRecovered written by a
            later kernel). Runs still open are probed now (signal 0 to their pid, on this
            host): alive -> in progress (not a mismatch); dead, detached by a fork, or open for
            more than 30 minutes without proof of life -> orphaned (a fresh mismatch; the next
            `uok run` closes it as recovered). Runs that ended in error or were recovered are
            historical mismatches.
        """,
        examples="""
            uok parity
            uok parity --json | jq '.fresh_mismatches'
        """,
    )
    p.add_argument("--json", action="store_true", help="one JSON object: the parity report")
    p.set_defaults(func=parity)


def parity(args: argparse.Namespace) -> int:
    from uok.adapters.probes import probe_open_runs
    from uok.replay.parity import build_report

    with read_models(args, readonly=True) as rm:
        runs = rm.runner.states(["runs"])["runs"]
        path = rm.store.location
    report = build_report(runs, probe_open_runs(runs), now=datetime.now(UTC), source_path=path)
    if args.json:
        emit(report)
        return 0
    print(f"parity of {report.source_path}: {report.runs} runs, {report.total_events} enter/exit events")
    print("paths: " + (", ".join(f"{k}={v}" for k, v in report.paths.items()) or "none"))
    print("statuses: " + (", ".join(f"{k}={v}" for k, v in report.statuses.items()) or "none"))
    print(f"matched: {report.matched}; fallback invocations: {report.fallback_invocations}")
    for title, rows in (
        ("in progress (not mismatches)", report.in_progress),
        ("fresh mismatches (orphaned)", report.fresh_mismatches),
        ("historical mismatches", report.historical_mismatches),
    ):
        print(f"{title}: {len(rows)}")
        for r in rows:
            print(f"  {r.run_id}  {r.status:<10} pid={r.pid} {r.detail}")
    if report.duplicate_exits:
        print(f"runs with more than one exit: {', '.join(report.duplicate_exits)}")
    return 0
