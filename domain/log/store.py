"""The event store port: what the kernel needs from an append-only log.

Adapters implement it (``uok.adapters.sqlite_store`` on apsw,
``uok.adapters.postgres`` on PostgreSQL). The domain only depends on this
shape, never on a driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

import msgspec
from uok.domain.errors import RuntimeFailure


class StreamMoved(RuntimeFailure):
    """An append expected a stream at a version it no longer is at (another
    writer moved it: a plan's lease taken over); nothing was written."""

    def __init__(self, stream: str, expected: int, actual: int):
        super().__init__(
            f"stream {stream!r} is at version {actual}, not {expected} as this writer expected: "
            "another process took it over; nothing written"
        )
        self.stream, self.expected, self.actual = stream, expected, actual


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
    def append(self, records: Sequence[NewRecord], *, expect: Mapping[str, int] | None = None) -> list[int]:
        """Append all records in ONE transaction and return their positions.

        Positions are gapless and increasing. If any (stream, version) exists
        already, raise :class:`uok.domain.log.errors.IntegrityError` and write
        nothing. ``expect``: stream -> the version it must be at (before
        these records) when the transaction commits, else :class:`StreamMoved`
        and nothing written (a run's lease, checked on every append).
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
