"""``uok progress TEXT``: from inside a task, report how far it has got."""

from __future__ import annotations

import argparse
import os

from uok.adapters.cli.framework import add_command

from uok.errors import InputError

DESCRIPTION = """\
Report progress from inside a running task: TEXT is appended as one line to the
task's progress file (UOK_PROGRESS_FILE, which uok sets for every task). The run
reads it within a quarter of a second, records it (a ProgressReported event), and
moves the unit to 'progress' with TEXT as its reason: `uok status`, the live display
of `uok run` and `uok state --at` show it. A report also counts as a sign of life
for the task's heartbeat. Writing the line to $UOK_PROGRESS_FILE yourself is the
same thing (docs/tasks.md).

Exit codes: 0 written; 2 not inside a task (no UOK_PROGRESS_FILE) or empty TEXT.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "progress",
        description=DESCRIPTION,
        examples="""
            uok progress "tests written, running them"
            uok progress 3/10 files migrated
            echo "halfway" >> "$UOK_PROGRESS_FILE"   # the same, without uok
        """,
    )
    p.add_argument("text", metavar="TEXT", nargs="+", help="what to report (one line; newlines become spaces)")
    p.set_defaults(func=progress, trailing_words="text")


def progress(args: argparse.Namespace) -> int:
    path = os.environ.get("UOK_PROGRESS_FILE")
    if not path:
        raise InputError("uok progress reports from inside a running task: UOK_PROGRESS_FILE is not set")
    text = " ".join(" ".join(args.text).split())
    if not text:
        raise InputError("nothing to report: TEXT is empty")
    with open(path, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    return 0
