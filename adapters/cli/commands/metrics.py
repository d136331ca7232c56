"""``uok metrics``: Prometheus metrics folded from the log.

``uok metrics`` prints the exposition text once (``--at P``: as of a past
position, recomputed by folding up to P). ``uok serve`` serves it at
``/metrics`` and refreshes from the log on every scrape. See
``docs/metrics.md``.
"""

from __future__ import annotations

import argparse
import sys

from uok.adapters.cli.framework import add_command
from uok.adapters.cli.output import emit
from uok.adapters.cli.readmodels import read_models


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


def gather(rm, at: int | None = None, verified: list[int] | None = None):
    """A :class:`MetricsSnapshot` from the registered read models.

    The hash chain of every event the read models are about to fold is
    checked first (from the lowest tracked position, or from ``verified[0]``
    if higher: what an earlier scrape of this process already checked), so
    metrics are never computed from an altered log (ChainBroken -> exit 3).
    """
    from uok.projections import registry
    from uok.projections.metrics import SOURCES, snapshot

    known = {p.name for p in registry.ALL}
    names = [n for n in SOURCES if n in known]
    if at is not None:
        rm.check_position(at, "--at")
        rm.store.verify_chain()
        return snapshot(rm.runner.state_at(at, names), at)
    status = [st for st in rm.runner.status() if st.name in names]
    start = min((st.position for st in status), default=0)
    if verified is not None:
        start = max(start, min(verified[0], rm.head()))
    _, _ = rm.store.verify_chain(after=start)
    lag = {st.name: st.lag for st in status}
    head = rm.head()
    snap = snapshot(rm.runner.states(names), head, lag)
    if verified is not None:
        verified[0] = head
    return snap


def metrics(args: argparse.Namespace) -> int:
    from uok.adapters.metrics_http import exposition

    with read_models(args) as rm:
        snap = gather(rm, args.at)
    if args.json:
        emit(snap)
    else:
        sys.stdout.buffer.write(exposition(snap))
    return 0
