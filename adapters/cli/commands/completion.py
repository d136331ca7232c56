"""``uok completion bash|zsh``: a shell completion script, generated from
the parser itself (by shtab), so it always knows every command and option."""

from __future__ import annotations

import argparse
import sys

from uok.adapters.cli.framework import add_command

SHELLS = ("bash", "zsh")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "completion",
        description="""
            Print a completion script for SHELL on stdout: every command, action and option of
            this uok, generated from its parser. Load it in the shell's start-up file, or save
            it where the shell looks for completions.
        """,
        examples="""
            eval "$(uok completion bash)"                      # in ~/.bashrc
            uok completion bash > ~/.local/share/bash-completion/completions/uok
            uok completion zsh > "${fpath[1]}/_uok"            # then restart zsh
        """,
        log=False,
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash or zsh")
    p.set_defaults(func=completion)


def completion(args: argparse.Namespace) -> int:
    import shtab
    from uok.adapters.cli.framework import build_parser

    parser = build_parser(everything=True)
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return 0
