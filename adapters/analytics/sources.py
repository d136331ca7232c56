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
from uok.domain.log.errors import PersistenceError

_READ = (  # streams and topics as their UTF-8 bytes: the loader joins them into Arrow buffers
    "SELECT position, CAST(stream AS BLOB), version, CAST(topic AS BLOB), payload, hash FROM events "
    "WHERE position > ? AND position <= ? ORDER BY position LIMIT ?"
)

PACKED = """SELECT count(*), min(position), max(position),
  sum(typeof(version) <> 'integer' OR typeof(payload) <> 'blob' OR typeof(hash) <> 'blob' OR octet_length(hash) <> 32),
  group_concat(printf('%016x', version), ''),
  group_concat(printf('%08x%08x%08x', octet_length(stream), octet_length(topic), octet_length(payload)), ''),
  CAST(group_concat(stream, '') AS BLOB), CAST(group_concat(topic, '') AS BLOB),
  CAST(group_concat(payload, '') AS BLOB), CAST(group_concat(hash, '') AS BLOB)
FROM events WHERE position > ? AND position <= ?"""
"""A page of rows packed by SQLite into one row: each column's values joined
into one buffer, the integers as big-endian hex, and a count of rows whose
types are not the ones uok writes (streams and topics are taken as their
bytes whatever their type, as the row-by-row read does with ``CAST(... AS
BLOB)``; a payload or hash that is not a blob, or a version that is not an
integer, is refused by the row-by-row read). SQLite does in C what a row-by-row read
does in Python (a tuple and six objects per row); ``group_concat`` keeps
a blob's bytes as they are in a UTF-8 database, NUL bytes included."""

PACKED_SPLIT = """SELECT count(*), min(position), max(position),
  sum(typeof(version) <> 'integer' OR typeof(payload) <> 'blob' OR typeof(hash) <> 'blob' OR octet_length(hash) <> 32),
  group_concat(version),
  CAST(group_concat(stream, char(30)) AS BLOB), CAST(group_concat(topic, char(30)) AS BLOB),
  CAST(group_concat(payload, char(30)) AS BLOB), CAST(group_concat(hash, '') AS BLOB)
FROM events WHERE position > ? AND position <= ?"""
"""The same page packed for the C extension (``_chain.split_page``): the
versions as decimal text joined by commas, the streams, topics and payloads
each joined with the byte 0x1e between values (which the C code counts and
removes), so SQLite formats one integer per row instead of four (0.50-0.54
CPU-s per million events against 0.64-0.65 for :data:`PACKED`). A value
that holds the byte 0x1e makes the count wrong; that page is then read row
by row."""

READ_ERRORS: tuple[type[BaseException], ...] = (apsw.Error, PersistenceError)
"""Errors of either source that mean "the log could not be read"."""


class RowSource(Protocol):
    label: str  # the log as shown (a path, or a URL without its password)

    def head(self, position: int) -> tuple[int, bytes | None]:
        """(head position, hash at ``position`` or None)."""

    def page(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]: ...

    def packed(self, after: int, upto: int, limit: int, split: bool = False) -> tuple[Any, ...] | None: ...

    def close(self) -> None: ...


class ApswRows:
    """A SQLite log, read on a read-only connection of this thread's own."""

    def __init__(self, db: Path):
        self.label = str(db)
        from uok.adapters.sqlite_open import open_readonly

        self._conn = open_readonly(db)  # never checkpoints; immutable on read-only storage
        self._conn.set_busy_timeout(10_000)
        self._utf8 = self._conn.execute("PRAGMA encoding").fetchall()[0][0] == "UTF-8"

    def head(self, position: int) -> tuple[int, bytes | None]:
        head = cast(int, self._conn.execute("SELECT max(position) FROM events").fetchall()[0][0] or 0)
        rows = (
            self._conn.execute("SELECT hash FROM events WHERE position = ?", (position,)).fetchall() if position else []
        )
        return head, (bytes(cast(bytes, rows[0][0])) if rows else None)

    def page(self, after: int, upto: int, limit: int) -> list[tuple[Any, ...]]:
        return self._conn.execute(_READ, (after, upto, limit)).fetchall()

    def packed(self, after: int, upto: int, limit: int, split: bool = False) -> tuple[Any, ...] | None:
        """The rows ``after < position <= min(upto, after + limit)`` packed
        by SQLite (:data:`PACKED`): ``(count, first position, versions hex,
        lengths hex, streams, topics, payloads, hashes)``; with ``split``,
        :data:`PACKED_SPLIT`: ``(count, first position, versions, streams,
        topics, payloads, hashes)`` with separators; ``None`` when the
        page is not exactly positions ``after + 1 ..`` with the types uok
        writes (or the log is not UTF-8): :meth:`page` then reads it row by
        row, and names what is wrong."""
        if not self._utf8:
            return None
        try:
            row = self._conn.execute(PACKED_SPLIT if split else PACKED, (after, min(upto, after + limit))).fetchall()[0]
        except apsw.TooBigError:  # a page over SQLite's string limit (1 GB): read it row by row
            return None
        n, first, last, unexpected = cast(tuple[int, int | None, int | None, int | None], row[:4])
        if not n or first != after + 1 or last != after + n or unexpected:
            return None
        return (n, first, *row[4:])

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

    def packed(self, after: int, upto: int, limit: int, split: bool = False) -> None:
        return None  # read row by row

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
