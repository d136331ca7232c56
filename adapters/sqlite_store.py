"""The append-only, hash-chained event log on SQLite (apsw).

One table, ``events``, holds every event of the kernel. ``position`` is the
global order: it is assigned explicitly as ``last + 1`` inside a ``BEGIN
IMMEDIATE`` transaction, so it is gapless even with several writer
processes (SQLite's AUTOINCREMENT would leave gaps after rollbacks). Each
row carries the SHA-256 chain hash of :mod:`uok.domain.log.chain`; triggers refuse
UPDATE and DELETE through any connection, so history can only grow.

The eventsourcing library runs on the same table through
:mod:`uok.adapters.es_apsw` (``PERSISTENCE_MODULE=uok.adapters.es_apsw``). Opening and
validating the file, and the error classes, are in :mod:`uok.adapters.sqlite_open`.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import starmap
from pathlib import Path
from typing import Any, cast

import apsw
from uok.adapters import head_anchor
from uok.adapters.head_anchor import HeadAnchor
from uok.adapters.sqlite_open import (
    HEAD_SQL,
    LogOpener,
    NotAnEventLogError,
    StoreCorruptError,
    StoreFullError,
    rollback,
    translate,
)  # fmt: skip
from uok.domain.log.chain import GENESIS, ChainBroken, LengthPrefixed, verify
from uok.domain.log.errors import IntegrityError, OperationalError
from uok.domain.log.store import NewRecord, StoredRecord, StreamMoved

__all__ = [
    "CommitSignal",
    "NotAnEventLogError",
    "SqliteEventStore",
    "StoreCorruptError",
    "StoreFullError",
    "translate",
]

_PAGE = 1000  # rows fetched per lock hold by read() and verify_chain()
_HEAD = HEAD_SQL
_INSERT = "INSERT INTO events (position, stream, version, topic, payload, hash) VALUES (?, ?, ?, ?, ?, ?)"
_COLUMNS = "SELECT position, stream, version, topic, payload, hash FROM events"
_STREAM_VERSION = "SELECT MAX(version) FROM events WHERE stream = ?"
_SYNC_MODES = ("FULL", "NORMAL")
_I64_MAX = 2**63 - 1
KEEP_MAX = 100_000  # rows keep_appended() holds at most (~550 bytes each: ~55 MB); the oldest go first

_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack
_sha256 = hashlib.sha256


class CommitSignal:
    """In-process fan-out of "a transaction was committed to this file".

    Subscriptions register a :class:`threading.Event`; every store on the same
    file sets them after each commit, so readers in this process wake at once
    instead of waiting for their next poll. Keyed by the file's real path.
    """

    _registry: dict[str, CommitSignal] = {}
    _registry_lock = threading.Lock()

    def __init__(self) -> None:
        self._listeners: set[threading.Event] = set()
        self._lock = threading.Lock()

    @classmethod
    def for_path(cls, path: Path) -> CommitSignal:
        key = os.path.realpath(path)
        with cls._registry_lock:
            return cls._registry.setdefault(key, cls())

    def listen(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.add(event)

    def unlisten(self, event: threading.Event) -> None:
        with self._lock:
            self._listeners.discard(event)

    def notify(self) -> None:
        if not self._listeners:  # racy read is fine: a late listener polls
            return
        with self._lock:
            listeners = tuple(self._listeners)
        for event in listeners:
            event.set()


CRASH_AFTER_ENV = "UOK_CRASH_AFTER_APPENDS"
"""Test knob: ``UOK_CRASH_AFTER_APPENDS=N`` makes the process SIGKILL itself
right after its N-th committed ``append``, so a test can crash a run at
every transaction boundary in turn (tests/reliability/test_kill9.py)."""


def _crash_after() -> int:
    raw = os.environ.get(CRASH_AFTER_ENV, "").strip()
    return int(raw) if raw.isdigit() else 0


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` holding the store's lock.

    A class rather than a generator context manager: it is on the hot path
    of every append. Always rolls back on error, translates apsw errors,
    and wakes in-process subscribers after a commit.

    While the store groups transactions (:meth:`SqliteEventStore.group`)
    the first one opens the group's ``BEGIN IMMEDIATE`` and each is a
    ``SAVEPOINT`` in it: its failure undoes it alone, and the group commits
    at :meth:`SqliteEventStore.commit`.
    """

    __slots__ = ("grouped", "store")

    def __init__(self, store: SqliteEventStore) -> None:
        self.store = store
        self.grouped = False

    def __enter__(self) -> apsw.Connection:
        store = self.store
        store._lock.acquire()
        try:
            if store._grouping:
                if not store._group_open:
                    store._conn.execute("BEGIN IMMEDIATE")
                    store._group_open = True
                    store._group_head = None
                    store._group_checked = {}
                store._conn.execute("SAVEPOINT uok_group")
                self.grouped = True
            else:
                store._conn.execute("BEGIN IMMEDIATE")
        except BaseException as e:
            store._lock.release()
            if isinstance(e, apsw.Error):
                raise translate(e, store.path) from e
            raise
        return store._conn

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self.grouped:
            self._exit_grouped(exc_type, exc)
            return
        store = self.store
        conn = store._conn
        try:
            if exc is None:
                try:
                    conn.execute("COMMIT")
                except BaseException as e:  # noqa: BLE001
                    exc = e
            if exc is not None:
                rollback(conn)
        finally:
            store._lock.release()
        if exc is None:
            store.unsynced = store.deferred  # a deferred commit is durable at the next sync()
            store.signal.notify()
        elif isinstance(exc, apsw.Error):
            raise translate(exc, store.path) from exc
        elif exc_type is None:  # COMMIT failed with a non-apsw error
            raise exc

    def _exit_grouped(self, exc_type: type[BaseException] | None, exc: BaseException | None) -> None:
        store = self.store
        conn = store._conn
        try:
            if exc is None:
                try:
                    conn.execute("RELEASE uok_group")
                except BaseException as e:  # noqa: BLE001
                    exc = e
            if exc is not None:
                try:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK TO uok_group")
                        conn.execute("RELEASE uok_group")
                except apsw.Error:
                    rollback(conn)
                if not conn.in_transaction:  # SQLITE_FULL and some I/O errors end the whole group
                    store._group_open = False
                    store._group_head = None
                    store._unsynced_head = None
                    store._forget_kept()
        finally:
            store._lock.release()
        if exc is None:
            return
        if isinstance(exc, apsw.Error):
            raise translate(exc, store.path) from exc
        if exc_type is None:  # RELEASE failed with a non-apsw error
            raise exc


class SqliteEventStore:
    """:class:`uok.domain.log.store.EventStorePort` on one apsw connection.

    The connection is guarded by an RLock: apsw itself serialises calls, but
    a transaction must not interleave with another thread's statements (a
    reader would otherwise see rows that a failing batch later rolls back).
    Nothing is cached across calls, so every call sees other processes'
    committed writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10000,
        readonly: bool = False,
    ) -> None:
        mode = synchronous.upper() if isinstance(synchronous, str) else synchronous
        if mode not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {_SYNC_MODES}, not {synchronous!r}")
        self.path = Path(os.fspath(path)).absolute()
        self.synchronous: str = mode
        self.readonly = readonly
        self._lock = threading.RLock()
        self._signal = CommitSignal.for_path(self.path)
        self._conn: apsw.Connection = LogOpener(self.path, mode, busy_timeout_ms, readonly).open()
        self._closed = False
        self._crash_after = _crash_after()  # 0: off (the default)
        self._anchor = HeadAnchor(self.path)
        self.deferred = False  # group commits (defer_sync): commits not fsynced one by one
        self.unsynced = False  # a deferred commit happened since the last sync()
        self._unsynced_head: tuple[int, bytes] | None = None  # its anchor, written once it is durable
        self._wal_fd: int | None = None
        self._grouping = False  # group(): transactions are savepoints of one, committed by commit()
        self._group_open = False  # the group's BEGIN IMMEDIATE is open
        # the head while a group is open: no other connection can append then (it holds the write
        # lock), so the head moves only with this store's appends, and head() needs no query
        self._group_head: tuple[int, bytes] | None = None
        # stream -> version an append's ``expect`` found it at inside the open group: for the same
        # reason it cannot move but by this store's appends, which drop it (a run's lease, issue 15)
        self._group_checked: dict[str, int] = {}
        self._crash_pending = False  # UOK_CRASH_AFTER_APPENDS reached inside a group: die after its commit
        self._own_topics: dict[str, int] = {}  # topic -> records this connection tried to append (appended_mark)
        self._prefixed = LengthPrefixed()  # stream or topic -> its length-prefixed UTF-8 (chain preimages)
        # keep_appended(): the rows this connection appended, in position order, and the hash before the first
        self._kept: list[tuple[int, str, int, str, bytes, bytes]] | None = None
        self._kept_prev = GENESIS

    # -- plumbing ---------------------------------------------------------
    @property
    def connection(self) -> apsw.Connection:
        """The apsw connection, for modules keeping their own tables in this
        file. Prefer :meth:`transaction` for writes: it holds the store's lock."""
        return self._conn

    @property
    def signal(self) -> CommitSignal:
        return self._signal

    @property
    def location(self) -> str:
        """The log as shown to people (its path)."""
        return str(self.path)

    def listen(self):
        """A :class:`uok.adapters.sqlite_listen.CommitListener` on this file."""
        from uok.adapters.sqlite_listen import CommitListener

        return CommitListener(self)

    def transaction(self) -> _Transaction:
        """``with store.transaction() as conn:`` runs ``BEGIN IMMEDIATE`` …
        ``COMMIT`` under the lock; see :class:`_Transaction`. For other
        modules' tables in this file, and for :meth:`append` itself."""
        if self.readonly:
            raise OperationalError(f"event log {self.path} was opened readonly")
        return _Transaction(self)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement, under the lock, errors translated."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except apsw.Error as e:
                raise translate(e, self.path) from e

    # -- durability points (group commits, issue 15) ------------------------
    def defer_sync(self, on: bool = True) -> bool:
        """Group commits: while on, commits on a ``synchronous=FULL`` store in
        WAL mode are not fsynced one by one (``synchronous=NORMAL``: they are
        in the WAL, safe from a process crash) and :meth:`sync` makes every
        commit so far durable with one ``fdatasync`` of the WAL, before
        anything acts on them. Why: a run's turn is several small commits
        (its result and decisions, the writer token's release, the turn's
        closeout, the next token) and only the last one before a process is
        started needs to be durable; a power cut before that sync loses
        only commits nothing acted on, like a crash before them would.
        Turning it off syncs first. Returns whether commits are deferred (a
        NORMAL store, or one not in WAL mode, never defers: nothing to save
        or no WAL to sync)."""
        with self._lock:
            if on == self.deferred or self.readonly or self.synchronous != "FULL":
                return self.deferred
            if on:
                mode = self._conn.execute("PRAGMA journal_mode").fetchall()[0][0]
                if str(mode).lower() != "wal":
                    return False
                self._conn.execute("PRAGMA synchronous=NORMAL")
            else:
                self.sync()
                self._conn.execute("PRAGMA synchronous=FULL")
                if self._wal_fd is not None:
                    os.close(self._wal_fd)
                    self._wal_fd = None
            self.deferred = on
            return on

    def sync(self) -> None:
        """Make every commit so far durable (a no-op unless a deferred commit
        is pending): one ``fdatasync`` of the WAL file, which holds them all
        (an fsync flushes the file, whichever descriptor wrote it). An open
        group (:meth:`group`) is committed first."""
        self.commit()
        if not self.unsynced:
            return
        with self._lock:
            if not self.unsynced:
                return
            try:
                if self._wal_fd is None:
                    self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
                os.fdatasync(self._wal_fd)
            except FileNotFoundError:  # no WAL file to open: SQLite syncs its WAL before a checkpoint
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            self.unsynced = False
            if self._unsynced_head is not None:
                self._anchor.write(*self._unsynced_head)  # durable now: verify may expect it (head_anchor)
                self._unsynced_head = None

    def group(self, on: bool = True) -> bool:
        """Group transactions: while on, the appends (and every other
        :meth:`transaction`) share one SQLite transaction, opened by the
        first and committed by :meth:`commit` or :meth:`sync`; each is a
        savepoint in it, so a failing one (a stream version taken by another
        process) undoes only itself. Why (issue 15): a run's turn is several
        small appends (its result and decisions, the writer token's release,
        the turn's closeout, the next token) that nothing acts on in
        between; one commit for all of them writes the touched pages to the
        WAL once instead of four times. What is appended and in what order
        is unchanged; a crash before the commit loses the whole group, as a
        crash before its first append would. The write lock is held until
        the commit: the caller commits before it waits for anything.
        Turning it off commits. Returns whether it is on."""
        if self.readonly:
            return False
        with self._lock:
            if not on:
                self.commit()
            self._grouping = on
            return on

    @property
    def group_open(self) -> bool:
        """A group's ``BEGIN IMMEDIATE`` is open (:meth:`group`): this
        connection holds the write lock until :meth:`commit`."""
        return self._group_open

    def commit(self) -> None:
        """Commit the open group (a no-op when none is open). A failed commit
        rolls the group back and raises; nothing of it is in the log."""
        if not self._group_open:
            return
        with self._lock:
            if not self._group_open:
                return
            conn = self._conn
            self._group_open = False
            self._group_head = None
            try:
                conn.execute("COMMIT")
            except apsw.Error as e:
                rollback(conn)
                self._unsynced_head = None
                self._forget_kept()
                raise translate(e, self.path) from e
            except BaseException:
                rollback(conn)
                self._unsynced_head = None
                self._forget_kept()
                raise
            self.unsynced = self.deferred
            if not self.deferred and self._unsynced_head is not None:
                self._anchor.write(*self._unsynced_head)  # committed: verify may expect it (head_anchor)
                self._unsynced_head = None
            self._signal.notify()
            if self._crash_pending:
                os.kill(os.getpid(), 9)  # UOK_CRASH_AFTER_APPENDS: die like kill -9, right after the commit

    # -- writing ----------------------------------------------------------
    def append(
        self,
        records: Sequence[NewRecord],
        *,
        then: Callable[[apsw.Connection], Any] | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> list[int]:
        """Append ``records`` in one transaction; return their positions.

        ``then`` runs inside the same transaction after the insert (the
        eventsourcing process recorder writes its tracking row there).
        ``expect``: stream -> version it must be at, checked under the write
        lock (:class:`~uok.domain.log.store.StreamMoved` otherwise).
        """
        if not records and then is None:
            return []
        # Everything of each preimage but the previous hash and the position,
        # built before taking the write lock to keep the lock window short;
        # a stream's and a topic's length-prefixed bytes are made once (they repeat)
        u32, u64, sha256 = _U32, _U64, _sha256
        tails = []
        own = self._own_topics  # counted before the attempt: a mark may move for nothing, never stay
        prefixed = self._prefixed  # bounded: LengthPrefixed.MAX names
        for r in records:
            topic, stream, p = r.topic, r.stream, r.payload
            own[topic] = own.get(topic, 0) + 1
            tails.append((prefixed[stream], u64(r.version), prefixed[topic], u32(len(p)), p))
        first = pos = 0
        prev = before = GENESIS
        rows: list[tuple[int, str, int, str, bytes, bytes]] = []
        try:
            with self.transaction() as conn:
                if expect:
                    checked = self._group_checked if self._group_open else None
                    for stream, version in expect.items():
                        if checked is not None and checked.get(stream) == version:
                            continue
                        actual = cast(int, conn.execute(_STREAM_VERSION, (stream,)).fetchall()[0][0] or 0)
                        if actual != version:
                            raise StreamMoved(stream, version, actual)
                        if checked is not None:
                            checked[stream] = version
                if records:
                    if self._group_head is not None and self._group_open:
                        pos, prev = self._group_head
                    else:
                        head = conn.execute(_HEAD).fetchall()
                        pos, prev = cast(tuple[int, bytes], head[0]) if head else (0, GENESIS)
                    first, before = pos + 1, prev
                    checked = self._group_checked
                    for r, tail in zip(records, tails, strict=False):
                        pos += 1
                        prev = sha256(b"".join((prev, u64(pos), *tail))).digest()
                        rows.append((pos, r.stream, r.version, r.topic, r.payload, prev))
                        if checked:
                            checked.pop(r.stream, None)  # it moves: the next expect of it is queried
                    conn.executemany(_INSERT, rows)
                if then is not None:
                    then(conn)
        except IntegrityError as e:
            self._group_checked = {}
            raise self._conflict(records) or e from e
        except BaseException:
            self._group_checked = {}
            raise
        if records:
            if self._kept is not None:
                self._keep(rows, before)
            if self._group_open:
                self._group_head = (pos, prev)
            if self.deferred or self._group_open:  # the anchor never runs ahead of what is durable
                self._unsynced_head = (pos, prev)  # written at commit() or sync()
            else:
                self._anchor.write(pos, prev)  # committed: what verify will expect to find (uok.adapters.head_anchor)
        if self._crash_after:
            self._crash_after -= 1
            if not self._crash_after:
                if self._group_open:  # right after the commit that holds it
                    self._crash_pending = True
                else:
                    os.kill(os.getpid(), 9)  # UOK_CRASH_AFTER_APPENDS: die like kill -9, right after a commit
        return list(range(first, pos + 1)) if records else []

    # -- what this connection appended (the end of a run's read-model catch-up, issue 15) --
    def keep_appended(self, on: bool = True) -> None:
        """While on, keep the rows this connection appends (the last
        ``KEEP_MAX``, contiguous): :meth:`appended_rows` hands them to the
        read models' catch-up at the end of a run, which folds them without
        reading them back (:class:`uok.adapters.record_source.ChainedRecordSource`
        checks them against the stored hash first). Off: forgotten."""
        with self._lock:
            self._kept = [] if on else None
            self._kept_prev = GENESIS

    def appended_rows(self) -> tuple[bytes, list[tuple[int, str, int, str, bytes, bytes]]] | None:
        """(hash before the first, rows) of what :meth:`keep_appended` kept:
        ``(position, stream, version, topic, payload, hash)`` with consecutive
        positions, as this connection wrote and hashed them; None if nothing is kept."""
        kept = self._kept
        return (self._kept_prev, kept) if kept else None

    def _keep(self, rows: list[tuple[int, str, int, str, bytes, bytes]], before: bytes) -> None:
        kept = self._kept
        assert kept is not None
        if not kept or kept[-1][0] != rows[0][0] - 1:  # not right after the last kept: start again from here
            kept.clear()
            self._kept_prev = before
        kept.extend(rows)
        if len(kept) > KEEP_MAX:
            drop = len(kept) - KEEP_MAX // 2
            self._kept_prev = kept[drop - 1][5]
            del kept[:drop]

    def _forget_kept(self) -> None:
        """A group was rolled back: what it appended is not in the log."""
        if self._kept is not None:
            self._kept.clear()

    def _conflict(self, records: Sequence[NewRecord]) -> IntegrityError | None:
        """Name the (stream, version) that made an append fail (error path only)."""
        seen: set[tuple[str, int]] = set()
        for r in records:
            if (r.stream, r.version) in seen:
                return IntegrityError(f"stream {r.stream!r} version {r.version} appears twice in one append")
            seen.add((r.stream, r.version))
        for r in records:
            if self.query("SELECT 1 FROM events WHERE stream = ? AND version = ?", (r.stream, r.version)):
                return IntegrityError(f"stream {r.stream!r} already has version {r.version}; nothing written")
        return None

    # -- reading ----------------------------------------------------------
    def read(
        self,
        after: int = 0,
        *,
        upto: int | None = None,
        limit: int | None = None,
        stream: str | None = None,
        topics: Sequence[str] = (),
    ) -> Iterator[StoredRecord]:
        """Records with ``after < position <= upto`` in position order.

        Streams the log in pages of rows (keyset on position): memory stays
        bounded, and no statement (hence no snapshot or lock) stays open
        between pages, so an abandoned iterator never blocks checkpoints.
        """
        # positions are SQLite 64-bit integers: clamp user-supplied bounds
        # (`--after 10**30`) instead of letting the driver overflow
        after = max(min(after, _I64_MAX), -_I64_MAX)
        where = ["position > ?"]
        params: list[Any] = []
        if upto is not None:
            where.append("position <= ?")
            params.append(max(min(upto, _I64_MAX), -_I64_MAX))
        if stream is not None:
            where.append("stream = ?")
            params.append(stream)
        if topics:
            where.append(f"topic IN ({','.join('?' * len(topics))})")
            params.extend(topics)
        sql = f"{_COLUMNS} WHERE {' AND '.join(where)} ORDER BY position LIMIT ?"
        return self._pages(sql, params, after, limit, StoredRecord)

    def _pages(
        self, sql: str, params: list[Any], after: int, limit: int | None, make: Callable[..., Any] | None
    ) -> Iterator[Any]:
        """Keyset pagination on position; ``make`` builds each item from a row."""
        remaining = limit
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            with self._lock:
                try:
                    rows = self._conn.execute(sql, (after, *params, size)).fetchall()
                except apsw.Error as e:
                    raise translate(e, self.path) from e
            yield from (rows if make is None else starmap(make, rows))
            if len(rows) < size:
                return
            after = cast(int, rows[-1][0])
            if remaining is not None:
                remaining -= len(rows)

    def head(self) -> tuple[int, bytes]:
        cached = self._group_head
        if cached is not None and self._group_open:
            return cached
        with self._lock:
            rows = self.query(_HEAD)
            head = (rows[0][0], rows[0][1]) if rows else (0, GENESIS)
            if self._group_open:
                self._group_head = head
            return head

    def appended_mark(self, topics: Sequence[str]) -> tuple[int, int]:
        """A value that changes whenever an event of one of ``topics`` may
        have been appended since it was taken: SQLite's ``data_version``
        (it moves when another connection, in any process, commits) and
        how many records of those topics this connection appended. A
        reader that folds only those topics takes the mark before it reads
        and, while the mark is unchanged, has nothing to read (one
        statement instead of a head query and a range read: the runner's
        steering poll between every two tasks, issue 15)."""
        with self._lock:
            try:
                version = self._conn.execute("PRAGMA data_version").fetchall()[0][0]
            except apsw.Error as e:
                raise translate(e, self.path) from e
        own = self._own_topics
        return cast(int, version), sum(own.get(t, 0) for t in topics)

    def stream_version(self, stream: str) -> int:
        if self._group_open:  # no other connection can move it until the group commits: asked once per group
            with self._lock:
                if self._group_open:
                    checked = self._group_checked
                    version = checked.get(stream)
                    if version is None:
                        version = checked[stream] = self.query(_STREAM_VERSION, (stream,))[0][0] or 0
                    return version
        return self.query(_STREAM_VERSION, (stream,))[0][0] or 0

    def count(self) -> int:
        return self.query("SELECT count(*) FROM events")[0][0]

    def last_of_stream(self, stream: str) -> StoredRecord | None:
        """The stream's latest record (highest version), via UNIQUE(stream, version)."""
        rows = self.query(f"{_COLUMNS} WHERE stream = ? ORDER BY version DESC LIMIT 1", (stream,))
        return StoredRecord(*rows[0]) if rows else None

    def hash_at(self, position: int) -> bytes | None:
        rows = self.query("SELECT hash FROM events WHERE position = ?", (max(min(position, _I64_MAX), -_I64_MAX),))
        return rows[0][0] if rows else None

    def range_rows(self, lo: int, hi: int, topics: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Rows ``lo < position <= hi``: all six columns, or (position, topic,
        payload) of the given topics only (the projection runner's scans)."""
        if topics is None:
            return self.query(f"{_COLUMNS} WHERE position > ? AND position <= ? ORDER BY position", (lo, hi))
        if not topics:
            return []
        marks = ",".join("?" * len(topics))
        return self.query(
            f"SELECT position, topic, payload FROM events WHERE position > ? AND position <= ? "
            f"AND topic IN ({marks}) ORDER BY position",
            (lo, hi, *topics),
        )

    def integrity_problems(self) -> list[str]:
        """What ``uok verify`` checks besides the chain: SQLite's
        ``integrity_check`` (every page, every index against its table)."""
        problems = [r[0] for r in self.query("PRAGMA integrity_check(20)")]
        return [] if problems == ["ok"] else [f"SQLite integrity_check failed: {'; '.join(problems[:3])}"]

    def anchor_problems(self) -> list[str]:
        """What ``uok verify`` checks against the head recorded outside the
        file at each commit (:mod:`uok.adapters.head_anchor`): committed
        events a lost or damaged ``-wal`` took away."""
        problem = head_anchor.check(self.path, self.head()[0], self.hash_at)
        return [problem] if problem else []

    def verify_chain(self, after: int = 0) -> tuple[int, bytes]:
        """Recompute the chain from ``after`` to the head; ``(count, head hash)``.

        Raises :class:`uok.domain.log.chain.ChainBroken` at the first bad position.
        """
        prev = GENESIS
        if after > 0:
            rows = self.query("SELECT hash FROM events WHERE position = ?", (after,))
            if not rows:
                raise ChainBroken(after, "no event at the starting position")
            prev = rows[0][0]
        sql = f"{_COLUMNS} WHERE position > ? ORDER BY position LIMIT ?"
        return verify(self._pages(sql, [], after, None, None), prev, after + 1)

    def checkpoint(self) -> tuple[int, int, int]:
        """Copy the committed WAL frames into the main file (PASSIVE: never
        waits for a reader); (busy, frames in the WAL, frames copied). A
        finished run calls it, so its events are in the file itself, not only
        in a ``-wal`` that a careless copy or a full disk could lose."""
        if self.readonly:
            return (0, 0, 0)
        rows = self.query("PRAGMA wal_checkpoint(PASSIVE)")
        busy, frames, copied = rows[0]
        return int(busy), int(frames), int(copied)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self.group(False)  # an open group is committed
                self.defer_sync(False)  # what was deferred is made durable first
                self._closed = True
                self._conn.close()
                self._anchor.close()

    def __enter__(self) -> SqliteEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
