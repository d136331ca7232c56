"""``uok worker``: claim and run units of a shared run, from any host (issue 16)."""

from __future__ import annotations

import argparse
import threading

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "worker",
        description="""
            Serve a run started with `uok run PLAN --claims` on the same log (PostgreSQL for
            several hosts; one SQLite file works on one machine): claim its ready units one at a
            time, run each unit's command here, and record the outcome. Start as many workers as
            you like, on as many hosts as reach the log.

            A claim is an event in the log carrying a lease (--lease seconds) and a fencing epoch:
            at most one worker holds a unit's turn (two claims race for one stream version; one
            wins). The worker renews its lease with a heartbeat event every third of it. A worker
            that dies (kill -9, a lost host) stops renewing; when its lease runs out by the
            coordinator's clock, the coordinator records the claim expired and the unit is retried
            (a new turn, within its retry budget) by another worker. A worker whose lease expired
            cannot record its outcome: the append is fenced, refused, nothing written.

            The worker serves the newest open --claims run (or the one --run or --plan names),
            waiting up to --wait seconds for one to start, and exits when that run ends. Tasks run
            in the plan's directory as the run recorded it (--dir to run them elsewhere on this
            host); their output is kept on this host. Gates, retries and every decision stay with
            the coordinator (`uok run`). SIGTERM or Ctrl-C stops the task in hand and leaves.

            Exit codes: 0 served a run to its end; 1 no run to serve within --wait; 2 bad usage.
        """,
        examples="""
            uok --db postgresql://uok@db.internal/uok worker   # on each worker host (same plan directory)
            uok --db postgresql://uok@db.internal/uok run plan.toml --claims --workers 8   # on the coordinator
            uok --db postgresql://uok@db.internal/uok worker --plan nightly --lease 60
            uok --db postgresql://uok@db.internal/uok worker --run r20260101120000-ab12cd --dir /srv/checkout
            uok --db .uok/events.db worker --wait 0      # one machine, one SQLite log: serve a run already open
        """,
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="ID", default="", help="serve this run (default: the newest open --claims run)")
    which.add_argument("--plan", metavar="ID", default="", help="serve the open --claims run of this plan id")
    p.add_argument(
        "--lease",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="lease of each claim: renewed every third of it; a worker silent this long loses its unit (default 30)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for a run to serve to start (default 300; 0: only a run open now)",
    )
    p.add_argument("--dir", metavar="DIR", help="run the tasks here instead of the plan's recorded directory")
    p.add_argument("--json", action="store_true", help="print what the worker did as one JSON object when it ends")
    p.set_defaults(func=worker)


def worker(args: argparse.Namespace) -> int:
    from pathlib import Path

    from uok.adapters.worker import Worker

    if not (args.wait >= 0):
        raise InputError(f"--wait must be >= 0 seconds, got {args.wait:g}")
    root = Path(args.dir) if args.dir else None
    if root is not None and not root.is_dir():
        raise InputError(f"--dir {root} is not a directory")
    log = open_log(args, create=True)  # a worker may start before the run: it waits on an empty log
    try:
        w = Worker(log, run_id=args.run, plan_id=args.plan, ttl=args.lease, root=root)
        restore = _on_signals(w.stopping)
        try:
            w.serve(wait=args.wait)
        finally:
            restore()
    finally:
        log.store.close()
    if w.run is None:
        what = f"run {args.run}" if args.run else f"plan {args.plan!r}" if args.plan else "any plan"
        msg = f"no open --claims run of {what} to serve within {args.wait:g}s"
        if args.json:
            emit({"worker": w.id, "run_id": "", "completed": 0, "refused": 0, "error": msg})
        else:
            print(f"uok worker: {msg}")
        return 1
    if args.json:
        emit({"worker": w.id, "run_id": w.run.run_id, "completed": w.completed, "refused": w.refused, "error": ""})
    else:
        print(f"worker {w.id}: run {w.run.run_id} ended; {w.completed} unit(s) run here, {w.refused} refused")
    return 0


def _on_signals(stopping: threading.Event):
    from uok.adapters.stop_signals import on_stop_signals

    return on_stop_signals(lambda _signum: stopping.set())
