"""The append-only, hash-chained event log on PostgreSQL (psycopg 3).

:class:`uok.domain.log.store.EventStorePort` with the guarantees of the apsw
store (:mod:`uok.adapters.sqlite_store`), for logs shared by several hosts:

* every append is ONE call of the schema's ``uok_append`` function, which
  serialises appends with a transaction-scoped advisory lock, assigns
  gapless positions and computes the chain hashes in the server (see
  :mod:`uok.adapters.postgres.schema` for why that is gapless and never
  exposes a later position before an earlier one commits);
* ``UNIQUE(stream, version)`` makes a racing writer of the same stream fail
  whole with ``uok.domain.log.errors.IntegrityError``;
* triggers refuse UPDATE, DELETE and TRUNCATE of ``events``;
* each commit NOTIFYs the schema's channel: :meth:`PostgresEventStore.listen`
  wakes on it instead of polling (:mod:`uok.adapters.postgres.listen`).

Connections come from a ``psycopg_pool.ConnectionPool`` (autocommit, READ
COMMITTED), so one store serves many threads; every call sees every
committed write. The URL's password never appears in an error or a
``repr``: the store is shown by :attr:`location`, the redacted URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
from psycopg import sql
from uok.adapters.postgres.errors import translate
from uok.adapters.postgres.opener import CONNECT_TIMEOUT_S, PgLogOpener
from uok.adapters.postgres.target import PgTarget
from uok.adapters.sqlite_store import CRASH_AFTER_ENV
from uok.domain.log.chain import GENESIS, ChainBroken, verify
from uok.domain.log.errors import IntegrityError, OperationalError
from uok.domain.log.store import NewRecord, StoredRecord, StreamMoved

__all__ = ["PostgresEventStore"]

_PAGE = 1000  # rows per statement of read() and verify_chain()
_I64_MAX = 2**63 - 1
_COLUMNS = "position, stream, version, topic, payload, hash"


def _clamp(n: int) -> int:
    return max(min(n, _I64_MAX), -_I64_MAX)


class _Statements:
    """The store's SQL, schema-qualified once."""

    def __init__(self, schema: str):
        s = sql.Identifier(schema)
        self.schema = s
        q = lambda text: sql.SQL(text).format(s=s)  # noqa: E731
        self.append = q("SELECT {s}.uok_append(%s::text[], %s::bigint[], %s::text[], %s::bytea[])")
        self.head = q("SELECT position, hash FROM {s}.events ORDER BY position DESC LIMIT 1")
        self.stream_version = q("SELECT max(version) FROM {s}.events WHERE stream = %s")
        self.version_before = q("SELECT max(version) FROM {s}.events WHERE stream = %s AND position < %s")
        self.count = q("SELECT count(*) FROM {s}.events")
        self.hash_at = q("SELECT hash FROM {s}.events WHERE position = %s")
        self.taken = q("SELECT 1 FROM {s}.events WHERE stream = %s AND version = %s")
        self.columns = q(f"SELECT {_COLUMNS} FROM {{s}}.events")


class PostgresEventStore:
    """:class:`uok.domain.log.store.EventStorePort` on a PostgreSQL schema.

    ``create``: install the schema's tables if it holds none (commands that
    write); otherwise a missing log is :class:`NoEventLogError`.
    """

    def __init__(
        self,
        url: str | PgTarget,
        *,
        create: bool = False,
        readonly: bool = False,
        pool_size: int = 4,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.target = url if isinstance(url, PgTarget) else PgTarget.parse(url)
        self.readonly = readonly
        self.sql = _Statements(self.target.schema)
        PgLogOpener(self.target, create=create and not readonly).open()
        # Every statement of ours names the schema; the search_path is for
        # people and tests running their own SQL through query().
        options = f"-c search_path={self.target.schema}"
        if readonly:  # the server refuses writes too, not only this class
            options += " -c default_transaction_read_only=on"
        kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": "uok",
            "connect_timeout": int(connect_timeout),
            "options": options,
        }
        self._pool = psycopg_pool.ConnectionPool(
            self.target.conninfo,
            min_size=1,
            max_size=max(1, pool_size),
            kwargs=kwargs,
            configure=self._configure,
            timeout=connect_timeout,
            name="uok",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg_pool.PoolTimeout as e:
            self._pool.close()
            raise translate(e, self.target, "cannot connect to PostgreSQL") from None
        self._closed = False
        raw = os.environ.get(CRASH_AFTER_ENV, "").strip()
        self._crash_after = int(raw) if raw.isdigit() else 0

    @staticmethod
    def _configure(conn: psycopg.Connection) -> None:
        conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED

    # -- plumbing ---------------------------------------------------------
    @property
    def location(self) -> str:
        """The log as shown to people: the URL with its password masked."""
        return self.target.display

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.target.display!r})"

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A pooled autocommit connection; psycopg errors leave as persistence errors."""
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise translate(e, self.target) from e

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """``with store.transaction() as conn:`` one transaction on one pooled
        connection (for the projection tables and the library's tracking)."""
        if self.readonly:
            raise OperationalError(f"event log {self.location} was opened readonly")
        with self.connection() as conn, conn.transaction():
            yield conn

    def query(self, statement: sql.Composed | str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of one statement (``%s`` placeholders)."""
        with self.connection() as conn:
            return conn.execute(statement, params, prepare=True).fetchall()

    # -- writing ----------------------------------------------------------
    def append(
        self,
        records: Sequence[NewRecord],
        *,
        then: Callable[[psycopg.Connection], Any] | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> list[int]:
        """Append ``records`` in one transaction; return their positions.

        ``then`` runs inside the same transaction after the insert.
        ``expect``: stream -> the version it must be at before these
        records, checked after ``uok_append`` took the log's transaction lock
        (:class:`~uok.domain.log.store.StreamMoved` otherwise, nothing written)."""
        if not records and then is None:
            return []
        if self.readonly:
            raise OperationalError(f"event log {self.location} was opened readonly")
        params = (
            [r.stream for r in records],
            [r.version for r in records],
            [r.topic for r in records],
            [r.payload for r in records],
        )
        try:
            with self._pool.connection() as conn:
                if then is None and not expect:
                    first = conn.execute(self.sql.append, params, prepare=True).fetchall()[0][0]
                else:
                    with conn.transaction():
                        first = conn.execute(self.sql.append, params, prepare=True).fetchall()[0][0]
                        for stream, version in (expect or {}).items():
                            actual = conn.execute(self.sql.version_before, (stream, first)).fetchall()[0][0] or 0
                            if actual != version:
                                raise StreamMoved(stream, version, actual)
                        if then is not None:
                            then(conn)
        except psycopg.errors.UniqueViolation as e:
            raise self._conflict(records) or translate(e, self.target) from None
        except (psycopg.Error, psycopg_pool.PoolTimeout) as e:
            raise translate(e, self.target, "append failed, nothing written") from None
        if self._crash_after:
            self._crash_after -= 1
            if not self._crash_after:
                os.kill(os.getpid(), 9)  # UOK_CRASH_AFTER_APPENDS: die like kill -9, right after a commit
        return list(range(first, first + len(records))) if records else []

    def _conflict(self, records: Sequence[NewRecord]) -> IntegrityError | None:
        """Name the (stream, version) that made an append fail (error path only)."""
        seen: set[tuple[str, int]] = set()
        for r in records:
            if (r.stream, r.version) in seen:
                return IntegrityError(f"stream {r.stream!r} version {r.version} appears twice in one append")
            seen.add((r.stream, r.version))
        for r in records:
            if self.query(self.sql.taken, (r.stream, r.version)):
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
        """Records with ``after < position <= upto`` in position order, in
        pages (keyset on position): no statement stays open between pages."""
        where = ["position > %s"]
        params: list[Any] = []
        if upto is not None:
            where.append("position <= %s")
            params.append(_clamp(upto))
        if stream is not None:
            where.append("stream = %s")
            params.append(stream)
        if topics:
            where.append("topic = ANY(%s::text[])")
            params.append(list(topics))
        statement = self.sql.columns + sql.SQL(f" WHERE {' AND '.join(where)} ORDER BY position LIMIT %s")
        return self._pages(statement, params, _clamp(after), limit, StoredRecord)

    def _pages(
        self, statement: sql.Composed, params: list[Any], after: int, limit: int | None, make: Callable | None
    ) -> Iterator[Any]:
        remaining = limit
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            rows = self.query(statement, (after, *params, size))
            if make is None:
                yield from rows
            else:
                for row in rows:
                    yield make(*row)
            if len(rows) < size:
                return
            after = rows[-1][0]
            if remaining is not None:
                remaining -= len(rows)

    def range_rows(self, lo: int, hi: int, topics: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Rows ``lo < position <= hi``: all six columns, or (position, topic,
        payload) of the given topics only (the projection runner's scans)."""
        if topics is None:
            return self.query(
                self.sql.columns + sql.SQL(" WHERE position > %s AND position <= %s ORDER BY position"), (lo, hi)
            )
        statement = sql.SQL(
            "SELECT position, topic, payload FROM {s}.events WHERE position > %s AND position <= %s "
            "AND topic = ANY(%s::text[]) ORDER BY position"
        ).format(s=self.sql.schema)
        return self.query(statement, (lo, hi, list(topics)))

    def head(self) -> tuple[int, bytes]:
        rows = self.query(self.sql.head)
        return (rows[0][0], rows[0][1]) if rows else (0, GENESIS)

    def stream_version(self, stream: str) -> int:
        return self.query(self.sql.stream_version, (stream,))[0][0] or 0

    def count(self) -> int:
        return self.query(self.sql.count)[0][0]

    def last_of_stream(self, stream: str) -> StoredRecord | None:
        """The stream's latest record (highest version), via UNIQUE(stream, version)."""
        rows = self.query(self.sql.columns + sql.SQL(" WHERE stream = %s ORDER BY version DESC LIMIT 1"), (stream,))
        return StoredRecord(*rows[0]) if rows else None

    def hash_at(self, position: int) -> bytes | None:
        rows = self.query(self.sql.hash_at, (_clamp(position),))
        return rows[0][0] if rows else None

    def verify_chain(self, after: int = 0) -> tuple[int, bytes]:
        """Recompute the chain from ``after`` to the head; ``(count, head hash)``."""
        prev = GENESIS
        if after > 0:
            at = self.hash_at(after)
            if at is None:
                raise ChainBroken(after, "no event at the starting position")
            prev = at
        statement = self.sql.columns + sql.SQL(" WHERE position > %s ORDER BY position LIMIT %s")
        return verify(self._pages(statement, [], after, None, None), prev, after + 1)

    def integrity_problems(self) -> list[str]:
        """What ``uok verify`` checks besides the chain: the guards of the
        log are in place (append-only triggers enabled, unique index valid)."""
        problems = []
        rows = self.query(
            "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = 'events'",
            (self.target.schema,),
        )
        enabled = dict(rows)
        for name in ("events_no_update", "events_no_delete", "events_no_truncate"):
            if name not in enabled:
                problems.append(f"trigger {name} is missing: events could be changed")
            elif enabled[name] == "D":
                problems.append(f"trigger {name} is disabled: events could be changed")
        rows = self.query(
            "SELECT i.relname, x.indisvalid, x.indisunique FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = 'events'",
            (self.target.schema,),
        )
        if not any(unique and valid for _, valid, unique in rows):
            problems.append("events has no valid unique index")
        problems += [f"index {name} is not valid" for name, valid, _ in rows if not valid]
        return problems

    def listen(self):
        """A :class:`uok.adapters.postgres.listen.CommitListener` on this log's channel."""
        from uok.adapters.postgres.listen import CommitListener

        return CommitListener(self)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.close()

    def __enter__(self) -> PostgresEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(target: str, *, create: bool = False, readonly: bool = False) -> PostgresEventStore:
    return PostgresEventStore(target, create=create, readonly=readonly)


def _register() -> None:
    """Make ``postgresql://`` and ``postgres://`` targets open this store
    (:func:`uok.adapters.stores.open_event_store` imports this module on first use)."""
    from uok.adapters.stores import SCHEMES

    for scheme in ("postgresql", "postgres"):
        SCHEMES.setdefault(scheme, _open)


_register()
