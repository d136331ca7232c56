"""``uok report RUN --html FILE``: one run as a self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from uok.adapters.cli.common import read_models, refuse_to_replace_a_log
from uok.adapters.cli.framework import add_command

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "report",
        description="""
            Write RUN's page -- totals, timeline, unit graph, and every unit's attempts,
            phases, gate runs with rationales, output and cost -- as one HTML file that opens
            offline (inline styles, no script, no network request allowed). The same log gives
            the same bytes. RUN is a run id or 'latest'. Needs the 'ui' extra.
        """,
        examples="""
            uok report latest --html run.html
            uok report r20261124192936-5ca560 --html - > run.html
            uok report latest --html before.html --at 120   # the run as of position 120
        """,
    )
    p.add_argument("run", metavar="RUN", help="run id, or 'latest'")
    p.add_argument("--html", metavar="FILE", required=True, help="where to write the report ('-': stdout)")
    p.add_argument("--at", type=int, metavar="P", help="the run as of log position P (default: the head)")
    p.set_defaults(func=report)


def report(args: argparse.Namespace) -> int:
    from uok.adapters.cli.commands.ui import extra_module
    from uok.adapters.files import write_atomically
    from uok.adapters.runread import RunReader

    rendering = extra_module("uok.adapters.web.report", "ui")
    out = None if args.html == "-" else Path(args.html)
    if out is not None:
        refuse_to_replace_a_log(out, "--html")
        if out.is_dir():
            raise InputError(f"--html {out} is a directory")
    with read_models(args, readonly=True) as rm:
        reader = RunReader(rm.store, rm.runner, catch_up=False)
        rm.store.verify_chain()
        position = rm.check_position(rm.head() if args.at is None else args.at, "--at")
        run_id = reader.resolve_run(args.run, position)
        html = rendering.report_html(reader, run_id, position)
    if out is None:
        sys.stdout.write(html)
        return 0
    write_atomically(out, html.encode())
    print(f"wrote {out} (run {run_id} as of position {position}, {len(html.encode()):,} bytes)", file=sys.stderr)
    return 0
