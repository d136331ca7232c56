"""The machinery every sub-command shares: the parser, the options common
to all commands, and the entry point that runs one command and reports its
failure.

A command is a module under ``uok.adapters.cli.commands`` with a
``register(sub)`` that calls :func:`add_command` (which gives it its
summary from :mod:`uok.adapters.cli.registry`, its examples, and ``--db``)
and sets ``func`` on the parser it returns. Only the module of the command
being run is imported: ``uok --help`` builds a placeholder for every other
one from the registry alone.

JSON output (``--json``) follows one convention, see :mod:`uok.adapters.cli.output`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from uok.adapters.cli.registry import COMMANDS

PROG = "uok"

DESCRIPTION = """\
uok: an event-sourced orchestration kernel for autonomous agent work loops.

Every kernel enter/exit, unit transition, turn and gate run is an immutable
event in an append-only, hash-chained SQLite log. Everything else (status,
breakers, metrics, replay) is computed from that log.
"""

EPILOG = """\
examples:
  uok run plan.toml                 # run a plan; the log is .uok/events.db
  uok status                        # from the project or any sub-directory
  uok --db /tmp/other.db status     # --db goes before or after the command
  uok events --json | head          # machine-readable output (docs/cli.md)
  uok COMMAND --help                # each command's options and examples

The log: --db PATH, else $UOK_DB, else the nearest .uok/events.db in the
working directory or a parent (as git finds .git); `uok run` creates
.uok/events.db in the working directory when there is none.

Exit codes: 0 ok; 1 a run failed or a runtime failure; 2 bad input (nothing
written); 3 integrity failure (damaged or foreign log); 130 interrupted.
"""

DB_HELP = (
    "event log (default: $UOK_DB, else the nearest .uok/events.db in the working directory "
    "or a parent); accepted before or after the command"
)


class Formatter(argparse.HelpFormatter):
    """Prose paragraphs are wrapped to the terminal; a paragraph with
    indented lines (examples, a list of actions) is printed as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n[ \t]*\n", text.strip("\n"))
        out = []
        for para in paragraphs:
            lines = para.splitlines()
            if any(line[:1] in (" ", "\t") for line in lines[1:]) or para[:1] in (" ", "\t"):
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(lines), width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(out) + "\n"


def add_log_option(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """``--db``: on the top-level parser (default None) and on every command
    (SUPPRESS, so a command without it keeps the value given before it)."""
    parser.add_argument("--db", metavar="PATH", default=None if top else argparse.SUPPRESS, help=DB_HELP)


def examples_block(examples: str, notes: str = "") -> str:
    """The epilog: ``examples:`` and the indented example lines, then notes."""
    lines = [line.strip() for line in textwrap.dedent(examples).strip().splitlines()]
    block = "examples:\n" + "\n".join(f"  {line}" for line in lines)
    return block + ("\n\n" + textwrap.dedent(notes).strip() + "\n" if notes else "\n")


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    description: str,
    examples: str,
    notes: str = "",
    log: bool = True,
) -> argparse.ArgumentParser:
    """The parser of command ``name`` (registered in :data:`COMMANDS`),
    with its summary, description, examples and (``log``) ``--db``."""
    info = COMMANDS[name]
    kwargs: dict[str, Any] = {} if info.hidden else {"help": info.summary}
    parser = sub.add_parser(
        name,
        description=textwrap.dedent(description).strip() + "\n",
        epilog=examples_block(examples, notes),
        formatter_class=Formatter,
        **kwargs,
    )
    if log:
        add_log_option(parser)
    return parser


def add_action(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,  # noqa: A002 - argparse's own name for it
    description: str,
    examples: str,
    notes: str = "",
    log: bool = True,
) -> argparse.ArgumentParser:
    """A sub-command of a command (``uok bus send``), built like one."""
    parser = sub.add_parser(
        name,
        help=help,
        description=textwrap.dedent(description).strip() + "\n",
        epilog=examples_block(examples, notes),
        formatter_class=Formatter,
    )
    if log:
        add_log_option(parser)
    return parser


def add_actions(parser: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction:
    """The ACTION sub-parsers of a command with sub-commands (bus, projections)."""
    actions = parser.add_subparsers(dest=dest, metavar="ACTION")
    actions.required = True
    return actions


class _Version(argparse.Action):
    """``--version``: read from the package metadata only when asked
    (importlib.metadata is not free, and ``uok --help`` must start fast)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from uok import __version__

        sys.stdout.write(f"{PROG} {__version__}\n")
        parser.exit()


def build_parser(command: str | None = None, *, everything: bool = False) -> argparse.ArgumentParser:
    """The ``uok`` parser: the full parser of ``command`` (or of every
    command with ``everything``), a placeholder from the registry for the
    rest, so nothing but the command that runs is imported."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=Formatter, allow_abbrev=False
    )
    parser.add_argument("--version", action=_Version, help="print the version (from the package metadata) and exit")
    add_log_option(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True
    for name, info in COMMANDS.items():
        if everything or name == command:
            info.load().register(sub)
        elif info.hidden:
            sub.add_parser(name, add_help=False)
        else:
            sub.add_parser(name, help=info.summary, add_help=False)
    return parser


def command_in(argv: Sequence[str]) -> str | None:
    """The sub-command named in ``argv``: the first word that is neither an
    option nor the value of the top-level ``--db``."""
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if word == "--db":
            i += 2
            continue
        if not word.startswith("-") or word == "-":
            return word
        i += 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(command_in(argv))
    args, extra = parser.parse_known_args(argv)
    if extra:
        _take_trailing_words(parser, args, extra)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `uok events | head`: the reader left, nothing is wrong
        _silence_stdout()
        return 0
    except BaseException as exc:  # every failure is reported by class in report()  # noqa: BLE001
        return report(exc)


def _take_trailing_words(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Words after an option (``uok steer RUN note --unit U some text``): argparse
    gives a ``nargs="*"`` positional only the words before the option. A
    command names that positional with ``set_defaults(trailing_words=DEST)``
    to receive the rest; anything else left over is an error, as usual."""
    dest = getattr(args, "trailing_words", None)
    if dest is None or any(word.startswith("-") for word in extra):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    setattr(args, dest, [*getattr(args, dest), *extra])


def report(exc: BaseException) -> int:
    """The one place a failure becomes a message and an exit code
    (:func:`uok.errors.classify`); an unknown one is an internal error."""
    from uok.adapters.cli.output import err

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


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's
    final flush does not complain on stderr."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
