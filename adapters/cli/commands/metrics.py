"""``uok metrics``: Prometheus metrics folded from the log.

``uok metrics`` prints the exposition text once (``--at P``: as of a past
position, recomputed by folding up to P). ``uok serve`` serves it at
``/metrics`` and refreshes from the log on every scrape. See
``docs/metrics.md``.
"""

from __future__ import annotations

import argparse
import sys

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "metrics",
        description="""
            Print the metrics of the whole log in the Prometheus text format: gate
            runs/passes/failures/retries and latency per gate, breaker states, units by state,
            turns by status, runs, cost per model, message bus totals, projection lag. With
            --at P, the metrics as of position P.
        """,
        examples="""
            uok metrics
            uok metrics --at 1200
            uok metrics --json | jq .units_by_state
        """,
    )
    p.add_argument("--at", type=int, metavar="POSITION", help="as of this log position (folded up to it)")
    p.add_argument("--json", action="store_true", help="one JSON object: the snapshot, instead of the text format")
    p.set_defaults(func=metrics)


def metrics(args: argparse.Namespace) -> int:
    from uok.adapters.metrics_http import exposition
    from uok.adapters.readmodels import MetricsSource

    with read_models(args, readonly=True) as rm:
        source = MetricsSource(rm)
        snap = source() if args.at is None else source.at(args.at)
    if args.json:
        emit(snap)
    else:
        sys.stdout.buffer.write(exposition(snap))
    return 0
