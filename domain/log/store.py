"""The event store port: what the kernel needs from an append-only log.

Adapters implement it (``uok.adapters.sqlite_store`` on apsw,
``uok.adapters.postgres`` on PostgreSQL). The domain only depends on this
shape, never on a driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import msgspec


class NewRecord(msgspec.Struct, frozen=True):
    """An event about to be appended: its stream, the version it claims in
    that stream (optimistic concurrency), its topic and encoded payload."""

    stream: str
    version: int
    topic: str
    payload: bytes


class StoredRecord(msgspec.Struct, frozen=True):
    """An event as the log holds it, with its global position and chain hash."""

    position: int
    stream: str
    version: int
    topic: str
    payload: bytes
    hash: bytes


class CommitListener(Protocol):
    """Wakes a reader when the log grows: LISTEN/NOTIFY on PostgreSQL; on
    SQLite the in-process commit signal, and polling for other processes."""

    def wait(self, after: int, timeout: float | None = None) -> int:
        """The head once it is past ``after``; the head as it is when
        ``timeout`` seconds ran out or the listener was closed."""

    def close(self) -> None: ...

    def __enter__(self) -> CommitListener: ...

    def __exit__(self, *exc: object) -> None: ...


class EventStorePort(Protocol):
    def append(self, records: Sequence[NewRecord]) -> list[int]:
        """Append all records in ONE transaction and return their positions.

        Positions are gapless and increasing. If any (stream, version) exists
        already, raise ``eventsourcing.persistence.IntegrityError`` and write
        nothing.
        """

    def read(
        self,
        after: int = 0,
        *,
        upto: int | None = None,
        limit: int | None = None,
        stream: str | None = None,
        topics: Sequence[str] = (),
    ) -> Iterator[StoredRecord]:
        """Records with ``after < position <= upto`` in position order."""

    def head(self) -> tuple[int, bytes]:
        """(last position, its hash); ``(0, GENESIS)`` for an empty log."""

    def stream_version(self, stream: str) -> int:
        """Highest version recorded in ``stream``; 0 if none."""

    def listen(self) -> CommitListener:
        """A listener for commits to this log (open it before reading, so
        that no commit between the read and the wait is missed)."""

    def close(self) -> None: ...
