"""Where the analytical copy reads the log from: pages of raw rows.

The loader needs two things of a log: its head (with the hash at the
position the copy tracks) and pages of ``(position, stream, version, topic,
payload, hash)`` rows after a position. :class:`ApswRows` reads a SQLite
file on its own read-only apsw connection (opened in the loader's reader
thread); :class:`StoreRows` reads any other store (PostgreSQL) through its
:class:`uok.adapters.log_store.LogStore` methods. Positions are gapless on
both, so a page is a position range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, cast

import apsw
from eventsourcing.persistence import PersistenceError

_READ = (  # streams and topics as their UTF-8 bytes: the loader joins them into Arrow buffers
    "SELECT position, CAST(stream AS BLOB), version, CAST(topic AS BLOB), payload, hash FROM events "
    "WHERE position > ? AND position <= ? ORDER BY position LIMIT ?"
)

READ_ERRORS: tuple[type[BaseException], ...] = (apsw.Error, PersistenceError)
"""Errors of either source that mean "the log could not be read"."""


class RowSource(Protocol):
    label: str  # the log as shown (a path, or a URL without its password)

    def head(self, position: int) -> tuple[int, bytes | None]:
        """(head position, hash at ``position`` or None)."""

    def page(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class ApswRows:
    """A SQLite log, read on a read-only connection of this thread's own."""

    def __init__(self, db: Path):
        self.label = str(db)
        from uok.adapters.sqlite_open import open_readonly

        self._conn = open_readonly(db)  # never checkpoints; immutable on read-only storage
        self._conn.set_busy_timeout(10_000)

    def head(self, position: int) -> tuple[int, bytes | None]:
        head = cast(int, self._conn.execute("SELECT max(position) FROM events").fetchall()[0][0] or 0)
        rows = (
            self._conn.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchall() if position else []
        )
        return head, (bytes(cast(bytes, rows[0][0])) if rows else None)

    def page(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        return self._conn.execute(_READ, (after, upto, limit)).fetchall()

    def close(self) -> None:
        self._conn.close()


class StoreRows:
    """Any other store (a ``postgresql://`` log), opened read-only."""

    def __init__(self, target: str):
        from uok.adapters.stores import open_event_store

        self._store = open_event_store(target, readonly=True)
        self.label = self._store.location

    def head(self, position: int) -> tuple[int, bytes | None]:
        return self._store.head()[0], (self._store.hash_at(position) if position else None)

    def page(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        return self._store.range_rows(after, min(upto, after + limit))

    def close(self) -> None:
        self._store.close()


def is_url(log: str | os.PathLike[str]) -> bool:
    from uok.adapters.stores import is_url as _is_url

    return _is_url(log)


def open_rows(log: str | os.PathLike[str]) -> RowSource:
    from uok.adapters.stores import is_url

    return StoreRows(str(log)) if is_url(log) else ApswRows(Path(log))


def label(log: str | os.PathLike[str]) -> str:
    """The log as shown, without opening it (a URL's password masked)."""
    from uok.adapters.postgres.target import redact
    from uok.adapters.stores import is_url

    return redact(str(log)) if is_url(log) else str(log)
