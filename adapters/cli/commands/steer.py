"""``uok steer RUN_ID pause | resume | cancel UNIT | note TEXT``: steer a running kernel."""

from __future__ import annotations

import argparse
import socket
import time

from uok.adapters.cli.common import open_log
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit

from uok.errors import InputError

DESCRIPTION = """\
Send a steering command to a running `uok run`. It travels through the message
bus (recipient kernel:RUN_ID, topic steer); the run picks it up at its next turn
boundary (within about 0.2 s while it waits for units) and records what it did.

  pause         dispatch no new unit until `resume`; running units finish.
                The pause belongs to the plan: if the run stops or crashes
                while paused, the next `uok run` of the plan starts paused,
                and it is THAT new run's id you resume.
  resume        dispatch again.
  cancel UNIT   a queued unit is cancelled; a running one is killed and its
                turn ends 'stopped'. Final: its dependents are blocked.
  note TEXT     a note to the run's tasks: it is written into the feedback file
                (UOK_FEEDBACK_FILE, docs/tasks.md) of every task that starts
                from now on and of those running now. With --unit U, only
                unit U's. A note to a run that has ended is kept for the next
                attempt (`uok retry`).
  mode model_mode=M [work_mode=W]
                change the run's modes (a bare word is the model mode): units
                dispatched from now on get them (UOK_MODEL_MODE, UOK_WORK_MODE)
                and the model [uok.models] routes the model mode to (UOK_MODEL).
                Recorded as a ModeChanged event; replays.
  stop          end the whole run, as SIGTERM would: running units get the
                graceful stop (SIGTERM, grace, SIGKILL), their turns end
                'stopped', the run exits 'terminated'; the next `uok run`
                resumes the plan.

Exit codes: 0 sent (and, unless --wait 0, applied); 2 unknown or finished run,
bad command; 3 damaged log.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "steer",
        description=DESCRIPTION,
        examples="""
            uok steer r20260101120000-abc123 pause
            uok steer r20260101120000-abc123 cancel build-docs
            uok steer r20260101120000-abc123 note "switching to the new API" --wait 0
            uok steer r20260101120000-abc123 note --unit build "the tests need a network: use the mock"
            uok steer r20260101120000-abc123 resume --json
            uok steer r20260101120000-abc123 mode model_mode=fast
        """,
    )
    p.add_argument("run_id", metavar="RUN_ID", help="the run to steer (see `uok status`)")
    # not `choices=`: a damaged log must be reported (exit 3) before the words are judged
    p.add_argument("command", metavar="COMMAND", help="pause | resume | cancel | note | mode | stop")
    p.add_argument(
        "argument", metavar="ARG", nargs="*", help="UNIT for cancel, TEXT for note, model_mode=M work_mode=W for mode"
    )
    p.add_argument("--unit", metavar="U", help="note only: the unit the note is for (default: every unit)")
    p.add_argument(
        "--wait",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the run to apply it and print the outcome (default 10; 0: don't wait)",
    )
    p.add_argument(
        "--json", action="store_true", help="one JSON object: run_id, message_id, command, argument, outcome"
    )
    p.set_defaults(func=steer, trailing_words="argument")


def steer(args: argparse.Namespace) -> int:
    from uok.adapters.bus import MessageBus
    from uok.adapters.steering import COMMANDS, send_steering

    log = open_log(args)
    try:
        log.store.verify_chain()  # raises ChainBroken (exit 3) on a damaged log
        command, argument = args.command, " ".join(args.argument).strip()
        if command not in COMMANDS:
            raise InputError(f"unknown steering command {command!r}: use one of {', '.join(COMMANDS)}")
        if command == "cancel" and (not argument or " " in argument):
            raise InputError("cancel needs exactly one UNIT id")
        if command == "note" and not argument:
            raise InputError("note needs a TEXT")
        if command == "mode":
            from uok.domain.policies.modes import parse_mode_change

            parse_mode_change(argument)  # ModeError (exit 2) names what is wrong
        if command in ("pause", "resume", "stop") and argument:
            raise InputError(f"{command} takes no argument")
        if args.unit is not None and command != "note":
            raise InputError("--unit goes with note only")
        ended = _check_running(log, args.run_id, unit=args.unit, finished_ok=command == "note")
        head = log.store.head()[0]
        message_id = send_steering(MessageBus(log), args.run_id, command, argument, unit=args.unit or "")
        if ended:
            outcome: str | None = (
                f"kept for the next attempt{' of ' + args.unit if args.unit else ''} (the run has ended)"
            )
        else:
            outcome = _wait(log, args.run_id, message_id, head, args.wait) if args.wait > 0 else None
    finally:
        log.store.close()
    if args.json:
        emit(
            {
                "run_id": args.run_id,
                "message_id": message_id,
                "command": command,
                "argument": argument,
                "outcome": outcome,
            }
        )
    elif outcome is None:
        waited = f"not applied within {args.wait:g}s; " if args.wait > 0 else ""
        print(
            f"sent {command} to run {args.run_id} (message {message_id}); {waited}"
            "the run applies it at its next turn boundary"
        )
    else:
        print(f"run {args.run_id}: {command}{' ' + argument if argument else ''}: {outcome}")
    return 0


def _check_running(log, run_id: str, *, unit: str | None = None, finished_ok: bool = False) -> bool:
    """Exit 2 unless ``run_id`` entered, has not exited, and (on this host) its pid lives,
    and ``unit`` (if given) is one of its plan's. With ``finished_ok`` a run
    that has ended is accepted: returns True for it (a note kept for later)."""
    from uok.adapters.plancontent import with_graph
    from uok.adapters.probes import pid_alive
    from uok.domain import events as ev
    from uok.domain.log import codec

    entered: ev.KernelEntered | None = None
    plan_id = ""
    compiled: tuple[int, ev.PlanCompiled] | None = None
    exited: ev.KernelExited | None = None
    for r in log.store.read(0, stream=f"run:{run_id}"):
        e = codec.decode(r.topic, r.payload)
        if isinstance(e, ev.KernelEntered):
            entered = e
        elif isinstance(e, ev.PlanCompiled):
            plan_id, compiled = e.plan_id, (r.position, e)
        elif isinstance(e, ev.KernelExited):
            exited = e
    if entered is None:
        raise InputError(f"unknown run {run_id!r} (`uok status` lists the runs in this log)")
    units: set[str] = set()
    if unit is not None and compiled is not None:  # its graph: held, or referenced (uok.domain.plan.content)
        graph = with_graph(log.store, *compiled).graph
        units = {n.id for n in graph.nodes} if graph is not None else set()
    if unit is not None and unit not in units:
        raise InputError(f"plan {plan_id or '?'} of run {run_id} has no unit {unit!r}")
    if exited is not None:
        if finished_ok:
            return True
        raise InputError(
            f"run {run_id} has finished ({exited.status} at {exited.at:%Y-%m-%d %H:%M:%S}); "
            "only a running run can be steered"
        )
    if (not entered.host or entered.host == socket.gethostname()) and not pid_alive(entered.pid):
        if finished_ok:
            return True
        hint = _open_runs_hint(log, plan_id, run_id)
        raise InputError(
            f"run {run_id} is not running: its process (pid {entered.pid}) is gone; "
            f"the next `uok run` of plan {plan_id or '?'} recovers it{hint}"
        )
    return False


def _open_runs_hint(log, plan_id: str, run_id: str) -> str:
    from uok.adapters.probes import pid_alive
    from uok.adapters.runner import fold_log
    from uok.domain.kernel import Kernel

    k = Kernel()
    fold_log(log, k)
    live = [r.run_id for r in k.open_runs() if r.plan_id == plan_id and r.run_id != run_id and pid_alive(r.pid)]
    return f"; plan {plan_id} is now run by {', '.join(live)}: steer that run" if live else ""


def _wait(log, run_id: str, message_id: str, after: int, seconds: float) -> str | None:
    """The outcome the run recorded for ``message_id``, or None if it did not within ``seconds``."""
    from uok.domain.events import KernelExited, SteeringApplied
    from uok.domain.log import codec

    topics = (codec.topic_of(SteeringApplied), codec.topic_of(KernelExited))
    deadline = time.monotonic() + seconds
    with log.store.listen() as listener:  # woken by each commit (LISTEN/NOTIFY on PostgreSQL)
        while True:
            head = log.store.head()[0]
            for r in log.store.read(after, upto=head, topics=topics):
                e = codec.decode(r.topic, r.payload)
                if isinstance(e, SteeringApplied) and e.message_id == message_id:
                    return e.outcome
                if isinstance(e, KernelExited) and e.run_id == run_id:
                    return f"not applied: the run ended ({e.status}) first"
            after = head
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            listener.wait(after, timeout=remaining)
