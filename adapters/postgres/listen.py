"""Waiting for new events with LISTEN/NOTIFY instead of a polling loop.

Every append NOTIFYs the schema's channel (``uok_append`` does it inside the
appending transaction, so the notification is delivered when, and only
when, the events are committed). A :class:`CommitListener` holds one
dedicated connection that LISTENs on it; :meth:`CommitListener.wait` reads
the head, and while the head is not past the caller's position it blocks
on the connection's socket until a notification arrives. No query runs
between notifications; the wait wakes once a second only to notice
:meth:`close` from another thread.

LISTEN is issued before the first head read, so a commit that lands between
the read and the wait is already queued on the connection: no wake-up is
lost.
"""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import sql
from uok.adapters.postgres.errors import translate
from uok.adapters.postgres.opener import connect
from uok.adapters.postgres.schema import channel

_TICK_S = 1.0  # longest uninterrupted block, so close() from another thread is noticed


class CommitListener:
    def __init__(self, store) -> None:
        self.store = store
        self._conn = connect(store.target)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel(store.target.schema))))
        self._closed = threading.Event()
        self.notifications = 0  # how many NOTIFYs woke this listener (tests check it is not polling)

    def wait(self, after: int, timeout: float | None = None) -> int:
        """The log's head once it is past ``after``; the head as it is when
        ``timeout`` seconds ran out (or the listener was closed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            head = self.store.head()[0]
            if head > after or self._closed.is_set():
                return head
            remaining = _TICK_S if deadline is None else min(_TICK_S, deadline - time.monotonic())
            if remaining <= 0:
                return head
            self._block(remaining)

    def _block(self, seconds: float) -> None:
        try:
            for _ in self._conn.notifies(timeout=seconds, stop_after=1):
                self.notifications += 1
        except psycopg.Error as e:
            if not self._closed.is_set():
                raise translate(e, self.store.target, "lost the LISTEN connection") from None

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._conn.close()

    def __enter__(self) -> CommitListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
