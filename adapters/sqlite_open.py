"""Opening an event log file: creating it privately, refusing what is not
ours, and the mapping of SQLite's errors to the persistence hierarchy.

Split from :mod:`uok.adapters.sqlite_store` because everything here runs once,
before the connection is shared, and each step refuses a different kind of
bad file (not SQLite, truncated, another application's database, a newer
schema). The error classes live here so both modules raise the same ones.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import cast

import apsw
from uok.adapters import head_anchor
from uok.domain.errors import IntegrityFailure, RuntimeFailure
from uok.domain.log.errors import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)  # fmt: skip

__all__ = [
    "APPLICATION_ID",
    "HEAD_SQL",
    "MAX_PAGE_COUNT_ENV",
    "SCHEMA_VERSION",
    "LogOpener",
    "NotAnEventLogError",
    "StoreCorruptError",
    "StoreFullError",
    "open_readonly",
    "rollback",
    "translate",
]

APPLICATION_ID = 0x756F6B00  # "uok\0": marks a file as a uok event log.
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        position INTEGER PRIMARY KEY,
        stream   TEXT NOT NULL,
        version  INTEGER NOT NULL,
        topic    TEXT NOT NULL,
        payload  BLOB NOT NULL,
        hash     BLOB NOT NULL,
        UNIQUE(stream, version))""",
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'uok: events are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'uok: events are append-only'); END""",
    # Mirrors eventsourcing.sqlite's single-row tracking table: one row per
    # upstream application, moved forward only (see es_apsw.ApswTracking).
    """CREATE TABLE IF NOT EXISTS tracking (
        application_name TEXT PRIMARY KEY,
        notification_id  INTEGER NOT NULL) WITHOUT ROWID""",
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)

HEAD_SQL = "SELECT position, hash FROM events ORDER BY position DESC LIMIT 1"


class StoreCorruptError(DatabaseError, IntegrityFailure):
    """The file is not a SQLite database, or SQLite found it damaged."""


class NotAnEventLogError(StoreCorruptError):
    """A valid SQLite file that is not (or no longer) a uok event log."""


class StoreFullError(OperationalError, RuntimeFailure):
    """The disk (or ``max_page_count``) is full; the transaction was rolled back."""


def rollback(conn: apsw.Connection) -> None:
    """Roll back if a transaction is still open (SQLITE_FULL and some I/O
    errors roll back by themselves); never mask the error being handled."""
    if conn.in_transaction:
        with contextlib.suppress(apsw.Error):
            conn.execute("ROLLBACK")


def translate(error: apsw.Error, path: Path) -> PersistenceError:
    """Map an apsw exception to the store's (PEP 249) hierarchy
    (:mod:`uok.domain.log.errors`), so callers handle one family of errors
    whichever adapter they run on."""
    if isinstance(error, apsw.FullError):
        return StoreFullError(f"database or disk is full: no event was written ({path})")
    if isinstance(error, (apsw.CorruptError, apsw.NotADBError)):
        return StoreCorruptError(f"event log {path} is corrupt or not a SQLite database: {error}")
    if isinstance(error, apsw.ConstraintError):
        return IntegrityError(str(error))
    if isinstance(error, (apsw.ConnectionClosedError, apsw.CursorClosedError, apsw.ThreadingViolationError)):
        return InterfaceError(str(error))
    if isinstance(error, apsw.SQLError):
        return ProgrammingError(str(error))
    operational = (apsw.BusyError, apsw.LockedError, apsw.ReadOnlyError, apsw.CantOpenError, apsw.IOError)
    return (OperationalError if isinstance(error, operational) else DatabaseError)(f"{error} ({path})")


def open_readonly(path: Path) -> apsw.Connection:
    """A read-only connection that never changes the log's bytes.

    A read-only connection never checkpoints, truncates or deletes the
    ``-wal`` (a read-write one checkpoints and deletes it when it closes last,
    taking any frames it could not read with it). On read-only storage (the
    directory, or the file, cannot be written, so SQLite cannot create the
    ``-shm``), a log with no ``-wal`` is opened ``immutable``: nothing can
    change it. A log whose ``-wal`` exists there without a ``-shm`` is
    refused: opened immutable it would silently miss the events in the
    ``-wal``."""
    conn = None
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.execute("PRAGMA schema_version").fetchall()  # SQLite opens the WAL index lazily: fail here, not later
        return conn
    except (apsw.CantOpenError, apsw.ReadOnlyError):
        if conn is not None:
            conn.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise OperationalError(
                f"cannot read {path}: its -wal holds events not yet in the file, and the storage is read-only "
                "(no -shm can be created); copy the log and its -wal to a writable place"
            ) from None
    return apsw.Connection(_immutable_uri(path), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)


def _immutable_uri(path: Path) -> str:
    from urllib.parse import quote

    return f"file:{quote(str(path.absolute()))}?immutable=1"


MAX_PAGE_COUNT_ENV = "UOK_MAX_PAGE_COUNT"


def _apply_max_page_count(conn: apsw.Connection) -> None:
    """Test/ops knob: ``UOK_MAX_PAGE_COUNT=N`` caps the file at N pages
    (SQLite's per-connection ``max_page_count``), so a full disk can be
    rehearsed on any machine: appends past the cap fail with
    :class:`StoreFullError` and write nothing. Unset (the default): no cap."""
    raw = os.environ.get(MAX_PAGE_COUNT_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise OperationalError(f"{MAX_PAGE_COUNT_ENV} must be a positive integer, got {raw!r}")
        conn.execute(f"PRAGMA max_page_count = {int(raw)}")


class LogOpener:
    """Opens (and if needed creates) the file and checks it is our log.

    Separate from the store because every step here runs once, before the
    connection is shared, and each refuses a different kind of bad file.
    """

    def __init__(self, path: Path, synchronous: str, busy_timeout_ms: int, readonly: bool):
        self.path, self.synchronous, self.readonly = path, synchronous, readonly
        self.busy_timeout_ms = busy_timeout_ms

    def open(self) -> apsw.Connection:
        self._prepare_file()
        try:
            if self.readonly:
                conn = open_readonly(self.path)
            else:
                conn = apsw.Connection(str(self.path), flags=apsw.SQLITE_OPEN_READWRITE)
        except apsw.Error as e:
            raise translate(e, self.path) from e
        try:
            conn.set_busy_timeout(self.busy_timeout_ms)
            if not self.readonly:
                self._enable_wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            _apply_max_page_count(conn)
            self._check_or_create_schema(conn)
            conn.execute(HEAD_SQL).fetchall()  # touches the last leaf page: catches truncation
        except BaseException as e:
            conn.close()
            if isinstance(e, apsw.Error):
                raise translate(e, self.path) from e
            raise
        return conn

    def _enable_wal(self, conn: apsw.Connection) -> None:
        """Switch to WAL, retrying: SQLite answers BUSY at once (without the
        busy handler) when two processes convert a new file together."""
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        delay = 0.001
        while True:
            try:
                mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchall()[0][0])
                break
            except apsw.BusyError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        if mode.lower() != "wal":
            raise OperationalError(f"could not put {self.path} in WAL mode (journal_mode is {mode})")

    def _prepare_file(self) -> None:
        """Create dir and file (0600, before SQLite sees it), or refuse a
        file whose header already says it is not a SQLite database."""
        if self.readonly:
            if not self.path.is_file():
                raise FileNotFoundError(f"no event log at {self.path}")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # a dir we create (.uok) is private too
            with contextlib.suppress(FileExistsError):
                os.close(os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                head_anchor.forget(self.path)  # a new log: an anchor an earlier file left here is not its
        size = self.path.stat().st_size
        if size == 0:
            return
        with open(self.path, "rb") as f:
            header = f.read(18)
        if header[:16] != _SQLITE_MAGIC:
            raise StoreCorruptError(f"{self.path} is not a SQLite database (bad header)")
        page_size = int.from_bytes(header[16:18], "big") if len(header) == 18 else 0
        page_size = 65536 if page_size == 1 else page_size
        if page_size < 512 or size % page_size:  # SQLite files are whole pages
            raise StoreCorruptError(f"{self.path} is truncated ({size} bytes, page size {page_size})")

    def _check_or_create_schema(self, conn: apsw.Connection) -> None:
        """One transaction, so concurrent openers never see half a schema.

        A log whose schema is already complete is not written at all: a
        reading command must not touch (let alone bump the header of) a file
        it only reads, least of all a damaged one."""
        if self.readonly:
            self._check_ours(conn, allow_empty=False)
            return
        if self._is_complete(conn):
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._check_ours(conn, allow_empty=True)
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise

    @staticmethod
    def _is_complete(conn: apsw.Connection) -> bool:
        app_id = conn.execute("PRAGMA application_id").fetchall()[0][0]
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        if app_id != APPLICATION_ID or version != SCHEMA_VERSION:
            return False
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        return {"events", "tracking", "events_no_update", "events_no_delete"} <= names

    def _check_ours(self, conn: apsw.Connection, *, allow_empty: bool) -> None:
        app_id = conn.execute("PRAGMA application_id").fetchall()[0][0]
        version = cast(int, conn.execute("PRAGMA user_version").fetchall()[0][0])
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id == APPLICATION_ID:
            if version > SCHEMA_VERSION:
                raise NotAnEventLogError(f"{self.path} has schema version {version}, newer than {SCHEMA_VERSION}")
            if "events" not in tables:
                raise StoreCorruptError(f"{self.path} is marked as a uok event log but has no events table")
            return
        if app_id == 0 and not tables and allow_empty:
            return
        if app_id == 0 and not tables:
            raise NotAnEventLogError(f"no event log at {self.path} (empty database)")
        raise NotAnEventLogError(
            f"{self.path} is a SQLite database but not a uok event log "
            f"(application_id {app_id:#x}, tables {sorted(tables)})"
        )
