"""``uok ui``: the local, read-only web view (see docs/ui.md)."""

from __future__ import annotations

import argparse
import importlib

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command

from uok.errors import InputError, RuntimeFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "ui",
        description="""
            Serve a read-only web view of the event log: runs, each run's timeline and unit
            graph, units with their attempts, gate runs and output, time travel to any position
            and a diff between two, breakers, metrics, the message bus and a read-only SQL box.
            Pages update live while a run is in progress. Binds 127.0.0.1 unless told
            otherwise; nothing is fetched from the internet. Needs the 'ui' extra.
        """,
        examples="""
            uok ui                              # http://127.0.0.1:8765/
            uok ui --port 0                     # any free port; the URL is printed
            uok ui --db /tmp/x.db --host 0.0.0.0 # reachable from other machines: no authentication!
        """,
        notes="Every page takes ?at=POSITION (time travel); without it the page follows the log live.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    p.set_defaults(func=ui)


def ui(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    serve = extra_module("uok.adapters.web.serve", "ui").serve
    with read_models(args) as rm:
        serve(rm.store, rm.runner, host=args.host, port=args.port, announce=lambda s: print(s, flush=True))
    return 0


EXTRAS = {
    "ui": ("starlette", "uvicorn", "jinja2", "markupsafe", "sse_starlette"),
    "otel": ("opentelemetry", "google"),
}


def extra_module(name: str, extra: str):
    """Import ``name``, or say which extra to install when a library of it is missing."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in EXTRAS[extra]:
            raise RuntimeFailure(
                f"this needs the '{extra}' extra ({e.name} is missing): pip install 'uok[{extra}]'"
            ) from None
        raise
