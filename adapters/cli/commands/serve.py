"""``uok serve``: the Prometheus metrics of ``uok metrics`` over HTTP at
``/metrics``, refreshed from the log on every scrape. See ``docs/metrics.md``."""

from __future__ import annotations

import argparse
import signal
import threading

from uok.adapters.cli.common import read_models
from uok.adapters.cli.framework import add_command

from uok.errors import InputError, RuntimeFailure


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "serve",
        description="""
            Serve the metrics at http://HOST:PORT/metrics. Each scrape catches the read models
            up from their tracked positions (only events appended since the last scrape are
            folded). Binds 127.0.0.1 by default; --port 0 picks a free port. Prints the URL,
            then serves until interrupted.
        """,
        examples="""
            uok serve
            uok serve --port 0                  # any free port; the URL is printed
            uok serve --host 0.0.0.0 --port 9464 --db /srv/uok/events.db
        """,
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9464, help="port (default 9464; 0 = any free port)")
    p.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    from uok.adapters.cli.output import err

    from uok import bootstrap

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port {args.port} is not a port number")
    with read_models(args) as rm:
        try:
            server = bootstrap.metrics_server(
                rm, args.host, args.port, on_error=lambda e: err(f"scrape failed: {type(e).__name__}: {e}")
            )
        except OSError as e:
            raise InputError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None

        # The server runs on a thread; this one only waits for SIGINT/SIGTERM.
        # Raising KeyboardInterrupt into the serving thread instead loses the
        # signal when it lands while a response is being finished: wsgiref's
        # handler catches everything there, and the server served on.
        stopping = threading.Event()

        def stop(signum, _frame):
            stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        serving = server.start_in_thread()
        print(f"serving metrics of {rm.store.location} at {server.url} (Ctrl-C to stop)", flush=True)
        try:
            while serving.is_alive() and not stopping.wait(0.5):
                pass
        finally:
            server.close()
        if not stopping.is_set():  # the serving thread ended on its own: an error, not a stop
            raise RuntimeFailure("the metrics server stopped unexpectedly (see the message above)")
    return 0
