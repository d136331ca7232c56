"""Ctrl-C for commands that only read: leave at once, exit 130.

A reading command waiting on something long (a DuckDB query, a follower
blocked on the next commit) must stop the moment the user presses Ctrl-C.
Turning SIGINT into KeyboardInterrupt is not always enough: the exception
can be taken by a library running on the main thread (DuckDB reports it as
``RuntimeError: Query interrupted``), and the clean-up it triggers (closing
pools and listener connections, tearing DuckDB down) can itself block while
the process is starved of CPU. A command that writes nothing has nothing to
clean up, so the handler prints the usual one line and ends the process
with ``os._exit(130)``.

Commands that write (``uok run``, ``uok copy``) never use this: they stop
through their own, recorded, shutdown paths.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator

from uok.adapters.cli.output import err

from uok.errors import EXIT_INTERRUPTED


def leave_now(_signum: int = signal.SIGINT, _frame: object = None) -> None:
    """Report ``interrupted`` and end the process with exit 130, skipping
    interpreter clean-up (what was printed is flushed first)."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    err("interrupted")
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def ctrl_c_leaves_at_once() -> Iterator[None]:
    """While inside, SIGINT ends the process at once with exit 130; a
    KeyboardInterrupt already raised (the signal landed just before) does the
    same. The previous handler is restored on the way out."""
    previous = signal.signal(signal.SIGINT, leave_now)
    try:
        yield
    except KeyboardInterrupt:
        leave_now()
    finally:
        signal.signal(signal.SIGINT, previous)
