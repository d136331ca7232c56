"""Following a log: every record after a position, then each new one as
soon as it is committed.

The wait between commits is the store's :meth:`listen` (see
:class:`uok.adapters.log_store.CommitListener`): LISTEN/NOTIFY on
PostgreSQL, so an idle follower issues no query at all; on SQLite an
in-process signal plus a short re-read of the head for other processes.
Records are read through :meth:`EventLog.records`, so every one is checked
against the hash chain before it is yielded. The listener is opened before
the first read: a commit landing between a read and the wait is not missed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from uok.adapters.eventlog import EventLog
from uok.domain.log.store import StoredRecord

TICK_S = 1.0  # how often a blocked follower looks at ``stop``


def follow(log: EventLog, after: int = 0, *, stop: threading.Event | None = None) -> Iterator[StoredRecord]:
    """Records after ``after`` in position order, forever (until ``stop`` is
    set or the caller stops iterating)."""
    with log.store.listen() as listener:
        while stop is None or not stop.is_set():
            for r in log.records(after):
                yield r
                after = r.position
            listener.wait(after, timeout=TICK_S)
