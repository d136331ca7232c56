"""``uok retry [RUN|PLAN] [UNIT...]``: run a plan again, re-queueing what the operator names."""

from __future__ import annotations

import argparse
import getpass
import socket
from pathlib import Path

import msgspec
from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command

from uok.errors import InputError

DESCRIPTION = """\
Run a plan of the log again, re-queueing units that had ended: the units named, or
else every unit whose outcome is one of those asked for (--failed, --blocked,
--cancelled; default: all three). Each is re-queued with a new retry budget and a
new runaway budget (its attempts and dispatch count start over: `uok retry` is the
only thing that resets the runaway cap), recorded as a UnitRequeued event naming who
asked and why; units that were blocked because of them are re-queued too. Then the
run goes on like `uok run`: the same display, --json result and exit codes.

The first word may name the run to retry (its plan), a plan id of the log (its
latest run), or a plan file; without one, the log's latest run. The plan is read
from its file again, so a fixed command is what runs (a changed task is re-queued
anyway, see `uok run`). Replay, `uok state --at` and `uok fork` see every retry.

--failed covers failed, stale and runaway-recovered units.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "retry",
        description=DESCRIPTION,
        examples="""
            uok retry --failed
            uok retry r20260101120000-abc123 build test --reason "flaky network, fixed"
            uok retry demo --blocked --json
            uok retry plan.toml --failed --workers 4
        """,
    )
    p.add_argument("words", metavar="RUN|PLAN|UNIT", nargs="*", help="a run id, plan id or plan file, then units")
    p.add_argument("--failed", action="store_true", help="units that failed (also stale, runaway-recovered)")
    p.add_argument("--blocked", action="store_true", help="units blocked by a dependency")
    p.add_argument("--cancelled", action="store_true", help="units cancelled by an operator or a signal")
    p.add_argument("--reason", default="", metavar="TEXT", help="why, recorded with each re-queue")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="parallel units, clamped to 1..8 (default 2)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.add_argument("--json", action="store_true", help="print the run's result as one JSON object (as `uok run`)")
    p.add_argument("--config", metavar="PATH", type=Path, help="config file (TOML), as for `uok run`")
    p.add_argument("--grace", type=float, metavar="SECONDS", help="grace period of a stopped task, as for `uok run`")
    p.set_defaults(func=retry)


def retry(args: argparse.Namespace) -> int:
    from uok.adapters.cli.commands import run as run_command
    from uok.adapters.runner import load_plan

    plan_path, units = _target(args)
    _, graph = load_plan(plan_path)
    known = {n.id for n in graph.nodes}
    unknown = [u for u in units if u not in known]
    if unknown:
        raise InputError(f"plan {graph.plan_id} has no unit {', '.join(map(repr, unknown))}")
    states = tuple(s for s in ("failed", "blocked", "cancelled") if getattr(args, s)) or (
        "failed",
        "blocked",
        "cancelled",
    )
    _something_to_retry(args, graph.plan_id, units, states)
    request = msgspec.to_builtins(
        _request(
            units=tuple(units), states=states, by=f"{getpass.getuser()}@{socket.gethostname()}", reason=args.reason
        )
    )
    run_args = _run_defaults(run_command, plan_path)  # every option of `uok run`, at its default
    for key, value in vars(args).items():
        if key not in ("func", "words"):
            setattr(run_args, key, value)
    run_args.run_flags = {"retry": request}
    return run_command.run(run_args)


def _run_defaults(run_command, plan_path: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="uok")
    run_command.register(parser.add_subparsers())
    return parser.parse_args(["run", str(plan_path)])


def _something_to_retry(args: argparse.Namespace, plan_id: str, units: list[str], states: tuple[str, ...]) -> None:
    """Refuse (exit 2, nothing written) a retry that would re-queue nothing."""
    from uok import bootstrap

    known = bootstrap.status(getattr(args, "db", None))["plans"].get(plan_id, {}).get("units", {})
    ended = {u: v["state"] for u, v in known.items() if v.get("lifecycle") == "notified"}
    if units:
        waiting = [u for u in units if u not in ended]
        if waiting:
            raise InputError(f"nothing to retry: {', '.join(waiting)} of plan {plan_id} has not ended")
        return
    wanted = set(states) | ({"stale", "runaway-recovered"} if "failed" in states else set())
    if not any(state in wanted for state in ended.values()):
        raise InputError(f"nothing to retry: no unit of plan {plan_id} ended {' or '.join(states)}")


def _request(**kw):
    from uok.domain.events import RetryRequest

    return RetryRequest(**kw)


def _target(args: argparse.Namespace) -> tuple[Path, list[str]]:
    """The plan file to run again, and the units named."""
    words = list(args.words)
    with read_models(args) as rm:
        runs = rm.runner.states(["runs"])["runs"]
    latest: dict[str, tuple[int, str]] = {}  # plan id -> (entry position, plan path)
    for r in runs.values():
        if r.plan_id and r.entered_position >= latest.get(r.plan_id, (-1, ""))[0]:
            latest[r.plan_id] = (r.entered_position, r.plan_path)
    first = words[0] if words else ""
    if first and _is_file(first):
        return Path(first), words[1:]
    if first in runs:
        return _plan_file(runs[first].plan_path), words[1:]
    if first in latest:
        return _plan_file(latest[first][1]), words[1:]
    if not latest:
        raise InputError("the log has no run to retry: `uok run PLAN` first")
    _, path = max(latest.values())
    return _plan_file(path), words


def _plan_file(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"the run's plan file {path} is not there (from here): name it, `uok retry PLAN_FILE ...`")
    return p


def _is_file(word: str) -> bool:
    """Whether ``word`` names a plan file; a word that cannot be a path (too
    long, a NUL) is a run, plan or unit name, not an error."""
    try:
        return Path(word).is_file()
    except (OSError, ValueError):
        return False
