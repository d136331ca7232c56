"""Waiting for new events on a SQLite log.

SQLite has no notification across processes. A :class:`CommitListener`
wakes at once on commits made in this process (the file's
:class:`uok.adapters.sqlite_store.CommitSignal`) and otherwise re-reads the
head every ``POLL_INTERVAL`` seconds to see other processes' commits. The
PostgreSQL store's listener (:mod:`uok.adapters.postgres.listen`) has the
same shape and needs no polling.
"""

from __future__ import annotations

import threading
import time

POLL_INTERVAL = 0.075  # seconds between head reads while waiting for other processes' commits


class CommitListener:
    def __init__(self, store) -> None:
        self.store = store
        self._woken = threading.Event()
        self._closed = False
        store.signal.listen(self._woken)

    def wait(self, after: int, timeout: float | None = None) -> int:
        """The log's head once it is past ``after``; the head as it is when
        ``timeout`` seconds ran out (or the listener was closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._woken.clear()
            head = self.store.head()[0]
            if head > after or self._closed:
                return head
            remaining = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - time.monotonic())
            if remaining <= 0:
                return head
            self._woken.wait(remaining)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.store.signal.unlisten(self._woken)
            self._woken.set()

    def __enter__(self) -> CommitListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
