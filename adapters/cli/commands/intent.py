"""``uok intent --write P --read P``: a running task declares more read/write
intents (behaviour §12), granted or refused by its run's kernel."""

from __future__ import annotations

import argparse
import os

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError, RuntimeFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "intent",
        description="""
            From inside a running task: declare that it is about to read or write more paths
            (files, directories, globs, relative to the plan root) than its plan said. The run's
            kernel grants them (IntentDeclared: no unit whose intents overlap is dispatched until
            this task's turn ends) or refuses them because a unit running beside it holds an
            overlapping intent (IntentRefused, naming it). Both are events of the log.

            The task's run and turn come from UOK_RUN_ID and UOK_TURN_ID (uok sets them).

            Exit codes: 0 granted; 1 refused, or no answer within --wait; 2 bad usage (not inside
            a task, a bad path).
        """,
        examples="""
            uok intent --write 'src/**'
            uok intent --read docs/ --write build/out.txt --json
        """,
    )
    p.add_argument("--read", action="append", default=[], metavar="PATH", help="a path, directory or glob it reads")
    p.add_argument("--write", action="append", default=[], metavar="PATH", help="a path, directory or glob it writes")
    p.add_argument("--wait", type=float, default=30.0, metavar="SECONDS", help="how long to wait for the answer")
    p.add_argument("--json", action="store_true", help="one JSON object: run_id, turn_id, message_id, outcome")
    p.set_defaults(func=intent)


def intent(args: argparse.Namespace) -> int:
    from uok.adapters.bus import MessageBus
    from uok.adapters.cli.commands.steer import _wait
    from uok.adapters.steering import send_steering

    run_id, turn_id = os.environ.get("UOK_RUN_ID", ""), os.environ.get("UOK_TURN_ID", "")
    if not run_id or not turn_id:
        raise InputError("uok intent runs inside a task: UOK_RUN_ID and UOK_TURN_ID are not set")
    if not args.read and not args.write:
        raise InputError("give at least one --read PATH or --write PATH")
    words = []
    for kind, paths in (("read", args.read), ("write", args.write)):
        for path in paths:
            if not path or any(c.isspace() for c in path):
                raise InputError(f"--{kind} {path!r}: a path without spaces")
            words.append(f"{kind}={path}")
    log = open_log(args)
    try:
        head = log.store.head()[0]
        message_id = send_steering(MessageBus(log), run_id, "intent", " ".join([turn_id, *words]), sender=turn_id)
        outcome = _wait(log, run_id, message_id, head, args.wait)
    finally:
        log.store.close()
    if args.json:
        emit({"run_id": run_id, "turn_id": turn_id, "message_id": message_id, "outcome": outcome})
    elif outcome is not None:
        print(outcome)
    if outcome is None:
        raise RuntimeFailure(f"no answer from run {run_id} within {args.wait:g}s")
    return 0 if outcome == "granted" else 1
