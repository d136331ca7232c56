"""``uok cli-reference``: docs/cli.md, written from the parser (hidden from
``uok --help``; a test checks the committed file is current)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uok.adapters.cli.common import refuse_to_replace_a_log
from uok.adapters.cli.framework import add_command

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "cli-reference",
        description="""
            Write the command-line reference (every command's usage, description, options
            and examples, and the JSON convention) as Markdown, from the parser itself.
        """,
        examples="""
            uok cli-reference --out docs/cli.md
            uok cli-reference | less
        """,
        log=False,
    )
    p.add_argument("--out", metavar="PATH", type=Path, help="write to PATH instead of stdout")
    p.set_defaults(func=cli_reference)


def cli_reference(args: argparse.Namespace) -> int:
    from uok.adapters.cli.reference import render

    text = render()
    if args.out is not None:
        refuse_to_replace_a_log(args.out, "--out")
    if args.out is None:
        sys.stdout.write(text)
    else:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as e:
            raise InputError(f"--out {args.out}: cannot write it: {e.strerror or e}") from None
    return 0
