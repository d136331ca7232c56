"""``uok parity``: kernel enter/exit parity (behaviour §7), with a live pid probe."""

from __future__ import annotations

import argparse
import socket
import sys
from datetime import UTC, datetime

import msgspec
from uok.adapters.cli.common import add_db_argument
from uok.adapters.cli.readmodels import read_models


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "parity",
        help="kernel enter/exit parity: matched, in progress, orphaned, historical mismatches",
        description=(
            "Pair every kernel entry with its exit (KernelExited, or RunRecovered written by a later "
            "kernel). Runs still open are probed now (signal 0 to their pid, on this host): alive -> in "
            "progress (not a mismatch); dead, detached by a fork, or open for more than 30 minutes "
            "without proof of life -> orphaned (a fresh mismatch; the next `uok run` closes it as "
            "recovered). Runs that ended in error or were recovered are historical mismatches."
        ),
    )
    add_db_argument(p)
    p.add_argument("--json", action="store_true", help="machine-readable report")
    p.set_defaults(func=parity)


def probe_open_runs(runs: dict) -> dict[str, bool | None]:
    from uok.adapters.runner import pid_alive

    here = socket.gethostname()
    out: dict[str, bool | None] = {}
    for rid, r in runs.items():
        if r.status != "open":
            continue
        if r.pid <= 0:
            out[rid] = False
        elif r.host and r.host != here:
            out[rid] = None  # a pid on another machine proves nothing here
        else:
            out[rid] = pid_alive(r.pid)
    return out


def parity(args: argparse.Namespace) -> int:
    from uok.replay.parity import build_report

    with read_models(args) as rm:
        runs = rm.runner.states(["runs"])["runs"]
        path = str(rm.store.path)
    report = build_report(runs, probe_open_runs(runs), now=datetime.now(UTC), source_path=path)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")
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
