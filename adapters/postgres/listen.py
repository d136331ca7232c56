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

import contextlib
import threading
import time

import psycopg
from psycopg import sql
from uok.adapters.postgres.errors import translate
from uok.adapters.postgres.opener import connect
from uok.adapters.postgres.schema import channel

_TICK_S = 1.0  # longest uninterrupted block, so close() from another thread is noticed
_CLOSING = "closing"  # NOTIFY payload close() sends to wake its own blocked waiter


class CommitListener:
    """One LISTEN connection. ``wait`` may block in one thread while another
    calls ``close``: libpq connections must not be closed under a thread
    using them, so ``close`` sets a flag, wakes the waiter with a NOTIFY and
    closes the connection only once the waiter has let go of it."""

    def __init__(self, store) -> None:
        self.store = store
        self._channel = channel(store.target.schema)
        self._conn = connect(store.target)
        self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
        self._closed = threading.Event()
        self._using = threading.Lock()  # held while a thread reads the connection
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
        with self._using:
            if self._closed.is_set():
                return
            try:
                for note in self._conn.notifies(timeout=seconds, stop_after=1):
                    if note.payload != _CLOSING:
                        self.notifications += 1
            except psycopg.Error as e:
                raise translate(e, self.store.target, "lost the LISTEN connection") from None

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if not self._using.acquire(blocking=False):  # a waiter holds the connection: wake it
            with contextlib.suppress(Exception):
                self.store.query("SELECT pg_notify(%s, %s)", (self._channel, _CLOSING))
            if not self._using.acquire(timeout=_TICK_S + 5):
                return  # the waiter is stuck in the server: leave it the connection rather than crash libpq
        try:
            self._conn.close()
        finally:
            self._using.release()

    def __enter__(self) -> CommitListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
