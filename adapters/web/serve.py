"""Starting ``uok ui``: open the log's read models, check the chain, bind
the socket (so ``--port 0`` can print the port it got), serve with uvicorn
until Ctrl-C or SIGTERM (uvicorn's own graceful shutdown; exit 0)."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable

import uvicorn
from uok.adapters.runread import RunReader
from uok.adapters.web.app import WebView, create_app
from uok.adapters.web.sql import SqlBox

from uok.errors import InputError


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _AnnouncingServer(uvicorn.Server):
    """Says it is serving only once it is: after startup, when uvicorn's
    signal handlers are in place (a SIGTERM right after the announcement
    must stop it gracefully, not find the default action or nobody)."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]):
        super().__init__(config)
        self.announce = announce

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.announce()


def serve(store, runner, *, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve the web view of ``store`` until interrupted."""
    reader = RunReader(store, runner)
    store.verify_chain()  # a damaged log fails now (exit 3), not at the first page
    reader.verified = store.head()[0]
    runner.catch_up()  # the read models' cache; later pages fold only what is new
    path = getattr(store, "path", None)
    app = create_app(WebView(reader, sql=SqlBox(path) if path is not None else None))
    sock = bind(host, port)
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{sock.getsockname()[1]}/"
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        timeout_graceful_shutdown=2,  # live pages hold event streams open
    )
    server = _AnnouncingServer(
        config, lambda: announce(f"serving uok ui of {path or 'the event log'} at {url} (read-only; Ctrl-C to stop)")
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal
    # with the handlers it found: SIGINT -> KeyboardInterrupt (exit 130); SIGTERM
    # (a service manager stopping us) -> this no-op, so the exit is a clean 0.
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
