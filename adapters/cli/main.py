"""Entry point: builds the parser from the command modules and turns every
failure into one line on stderr and an exit code (:func:`uok.errors.classify`:
0 ok, 1 run finished with failed units or a runtime failure, 2 bad input or
usage, 3 integrity failure, 130 interrupted)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from uok.adapters.cli.common import err

# (module, ...) — each module has ``register(subparsers)`` that adds one or
# more sub-commands and sets ``func`` on them.
COMMANDS = [
    "uok.adapters.cli.run_cmd",
    "uok.adapters.cli.status_cmd",
    "uok.adapters.cli.events_cmd",
    "uok.adapters.cli.verify_cmd",
    "uok.adapters.cli.breakers_cmd",
    "uok.adapters.cli.bus_cmd",
    "uok.adapters.cli.steer_cmd",
    "uok.adapters.cli.writer_cmd",
    "uok.adapters.cli.projections_cmd",
    "uok.adapters.cli.state_cmd",
    "uok.adapters.cli.diff_cmd",
    "uok.adapters.cli.parity_cmd",
    "uok.adapters.cli.replay_cmd",
    "uok.adapters.cli.fork_cmd",
    "uok.adapters.cli.sql_cmd",
    "uok.adapters.cli.export_cmd",
    "uok.adapters.cli.metrics_cmd",
    "uok.adapters.cli.doctor_cmd",
]

DESCRIPTION = """\
uok: an event-sourced orchestration kernel for autonomous agent work loops.

Every kernel enter/exit, unit transition, turn and gate run is an immutable
event in an append-only, hash-chained SQLite log. Everything else (status,
breakers, metrics, replay) is computed from that log.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uok", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        return 0
    except BaseException as exc:  # every failure is reported by class in report()  # noqa: BLE001
        return report(exc)


def report(exc: BaseException) -> int:
    """The one place a failure becomes a message and an exit code."""
    from uok.errors import classify

    if isinstance(exc, SystemExit):
        raise exc
    known = classify(exc)
    if known is not None:
        code, message = known
        err(message)
        return code
    if os.environ.get("UOK_DEBUG"):
        raise exc
    # Never a traceback for a user (docs/architecture.md); tests look for "internal error".
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    err(f"internal error: {type(exc).__name__}: {first} (set UOK_DEBUG=1 for the traceback)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
