"""SIGINT and SIGTERM turned into a callback, for the processes that stop
through their own recorded shutdown (``uok run``, ``uok worker``).

Python only lets the main thread install handlers; called from another
thread (a test driving the runner in-process) this installs nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signals(handler: Callable[[int], None]) -> Callable[[], None]:
    """Call ``handler(signum)`` on SIGINT/SIGTERM; returns what restores the
    previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.signal(sig, lambda signum, _frame: handler(signum)) for sig in STOP_SIGNALS}

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore
