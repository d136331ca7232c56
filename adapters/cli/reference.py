"""The command-line reference (docs/cli.md), rendered from the parser.

Every command's and action's ``--help`` text, as the parser prints it at a
fixed width, under one heading each, after the conventions every command
shares (finding the log, exit codes, JSON output). Nothing here is written
by hand about a command, so the reference cannot drift from the CLI; a test
renders it again and compares it with the committed file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator

from uok.adapters.cli.framework import build_parser
from uok.adapters.cli.output import CONVENTION
from uok.adapters.cli.registry import COMMANDS

WIDTH = 100

HEADER = """\
# uok command line

<!-- Generated from the parser by `uok cli-reference --out docs/cli.md`; do not edit by hand.
     tests/e2e/test_cli.py fails when this file is not current. -->

Every command takes `--db PATH`, before or after the command name. Without it
the log is `$UOK_DB`, else the nearest `.uok/events.db` in the working
directory or one of its parents (as git finds `.git`; the search stops at a
file-system boundary and at the directories listed in
`UOK_CEILING_DIRECTORIES`). A command that writes (`uok run`, `uok bus send`)
creates `.uok/events.db` in the working directory when none is found, with a
`.gitignore` of `*` so the log is never committed. An empty `--db ''` or
`UOK_DB=` is an error, not a fall back to the default.

Shell completion: `eval "$(uok completion bash)"` (or `zsh`).

## Exit codes

| code | meaning |
|---|---|
| 0 | success |
| 1 | a run finished with failed or blocked units, or a runtime failure (disk full, a contending writer) |
| 2 | bad input: a plan, config, option or name that cannot be used; nothing was written |
| 3 | integrity failure: the log (or an export) is damaged, foreign or inconsistent |
| 130 | interrupted (Ctrl-C) |

Errors are one line on stderr, `uok: <what is wrong>`; never a traceback
(`UOK_DEBUG=1` shows one for an internal error). The classes behind each code
are listed in `uok/errors.py`.

## JSON output (`--json`)

"""


@contextlib.contextmanager
def _fixed_terminal() -> Iterator[None]:
    """argparse wraps to the terminal: render at one width, without colour."""
    saved = {k: os.environ.get(k) for k in ("COLUMNS", "NO_COLOR")}
    os.environ["COLUMNS"], os.environ["NO_COLOR"] = str(WIDTH + 2), "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _sub_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _section(level: int, parser: argparse.ArgumentParser) -> list[str]:
    out = [f"{'#' * level} `{parser.prog}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for child in _sub_parsers(parser).values():
        out += _section(level + 1, child)
    return out


def render() -> str:
    """The whole reference as Markdown."""
    with _fixed_terminal():
        parser = build_parser(everything=True)
        commands = _sub_parsers(parser)
        lines = [HEADER + CONVENTION.strip() + "\n", "## Commands", "", "| command | what it does |", "|---|---|"]
        for name, info in COMMANDS.items():
            if not info.hidden:
                lines.append(f"| [`uok {name}`](#uok-{name}) | {info.summary} |")
        lines += ["", "## `uok`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, info in COMMANDS.items():
            if not info.hidden:
                lines += _section(2, commands[name])
    return "\n".join(lines).rstrip() + "\n"
