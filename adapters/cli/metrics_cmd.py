"""``uok metrics`` and ``uok serve``: Prometheus metrics folded from the log.

``uok metrics`` prints the exposition text once (``--at P``: as of a past
position, recomputed by folding up to P). ``uok serve`` serves it at
``/metrics`` and refreshes from the log on every scrape. See
``docs/metrics.md``.
"""

from __future__ import annotations

import argparse
import signal
import sys

from uok.adapters.cli.common import add_db_argument
from uok.adapters.cli.readmodels import read_models

from uok.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "metrics",
        help="print Prometheus metrics (gates, breakers, units, turns, costs, bus, lag)",
        description="Print the metrics of the whole log in the Prometheus text format: gate runs/passes/"
        "failures/retries and latency per gate, breaker states, units by state, turns by status, runs, cost "
        "per model, message bus totals, projection lag. With --at P, the metrics as of position P.",
    )
    add_db_argument(p)
    p.add_argument("--at", type=int, metavar="POSITION", help="as of this log position (folded up to it)")
    p.add_argument("--json", action="store_true", help="the snapshot as JSON instead of the text format")
    p.set_defaults(func=metrics)

    s = sub.add_parser(
        "serve",
        help="serve /metrics over HTTP for Prometheus",
        description="Serve the metrics at http://HOST:PORT/metrics. Each scrape catches the read models up "
        "from their tracked positions (only events appended since the last scrape are folded). Binds "
        "127.0.0.1 by default; --port 0 picks a free port. Prints the URL, then serves until interrupted.",
    )
    add_db_argument(s)
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=9464, help="port (default 9464; 0 = any free port)")
    s.set_defaults(func=serve)


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
    import msgspec
    from uok.adapters.metrics_http import exposition

    with read_models(args) as rm:
        snap = gather(rm, args.at)
    if args.json:
        sys.stdout.buffer.write(msgspec.json.format(msgspec.json.encode(snap), indent=2) + b"\n")
    else:
        sys.stdout.buffer.write(exposition(snap))
    return 0


def serve(args: argparse.Namespace) -> int:
    from uok.adapters.cli.common import err
    from uok.adapters.metrics_http import MetricsServer

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    with read_models(args) as rm:
        verified = [0]
        gather(rm, verified=verified)  # fail now (exit 2/3), not at the first scrape, if the log is unusable
        try:
            server = MetricsServer(
                lambda: gather(rm, verified=verified),
                args.host,
                args.port,
                on_error=lambda e: err(f"scrape failed: {type(e).__name__}: {e}"),
            )
        except OSError as e:
            raise InputError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None

        def stop(signum, _frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        print(f"serving metrics of {rm.store.path} at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
    return 0
