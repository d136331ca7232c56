"""eventsourcing persistence module on the uok event log.

``PERSISTENCE_MODULE=uok.adapters.es_apsw`` makes an eventsourcing ``Application``
(and its ``ProjectionRunner``) record into the same hash-chained ``events``
table as :class:`uok.adapters.sqlite_store.SqliteEventStore`: every insert goes
through :meth:`SqliteEventStore.append`, so positions stay gapless and the
chain valid whoever writes. The mapping is::

    originator_id -> stream (str; read back as UUID when it is one)
    originator_version -> version,  topic -> topic,  state -> payload
    notification id -> position

Environment: ``SQLITE_DBNAME`` (as the library's sqlite module) or
``UOK_DB`` for the file; ``UOK_SYNCHRONOUS`` (FULL or NORMAL, default FULL).

The store raises uok's PEP 249 errors (:mod:`uok.domain.log.errors`); every
recorder call hands the library its own class of the same name instead
(:func:`library_errors`), as its recorders' contract says.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import apsw
from eventsourcing import persistence
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    ProcessRecorder,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log import errors
from uok.domain.log.store import NewRecord

POLL_INTERVAL = 0.075  # seconds between polls for other processes' commits

_UPSERT_TRACKING = (
    "INSERT INTO tracking (application_name, notification_id) VALUES (?, ?) "
    "ON CONFLICT (application_name) DO UPDATE SET notification_id = excluded.notification_id "
    "WHERE tracking.notification_id < excluded.notification_id RETURNING notification_id"
)


@contextmanager
def library_errors() -> Iterator[None]:
    """The store's errors as the library's class of the same name (an
    ``IntegrityError`` stays an ``IntegrityError``, a full disk an
    ``OperationalError``), message kept, the store's error as the cause."""
    try:
        yield
    except errors.PersistenceError as e:
        base = next(c for c in type(e).__mro__ if c.__module__ == errors.__name__)
        raise getattr(persistence, base.__name__)(str(e)) from e


def to_originator_id(stream: str) -> UUID | str:
    """The stream as the library's sqlite module returns it: a UUID when
    the text is a canonical UUID, else the text itself."""
    if len(stream) == 36:
        try:
            uuid = UUID(stream)
        except ValueError:
            return stream
        if str(uuid) == stream:
            return uuid
    return stream


def _select_stream(
    store: SqliteEventStore,
    table: str,
    originator_id: UUID | str,
    gt: int | None,
    lte: int | None,
    desc: bool,
    limit: int | None,
) -> list[StoredEvent]:
    """One aggregate's events (or snapshots) by version, via UNIQUE(stream, version)."""
    sql = f"SELECT version, topic, payload FROM {table} WHERE stream = ?"
    params: list[Any] = [str(originator_id)]
    if gt is not None:
        sql += " AND version > ?"
        params.append(gt)
    if lte is not None:
        sql += " AND version <= ?"
        params.append(lte)
    sql += " ORDER BY version DESC" if desc else " ORDER BY version"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    with library_errors():
        rows = store.query(sql, params)
    return [StoredEvent(originator_id, v, t, p) for v, t, p in rows]


class ApswRecorder:
    """Base: every recorder of a factory shares one store (one connection)."""

    def __init__(self, store: SqliteEventStore) -> None:
        self.store = store


class ApswAggregateRecorder(ApswRecorder, AggregateRecorder):
    """Aggregate events in the chained ``events`` table.

    An aggregate recorder has no application sequence to report, so
    ``insert_events`` returns None (the library's contract); the
    application recorder returns the positions, which are its notification
    ids."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        self._append(stored_events, kwargs)
        return None

    def _append(self, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]) -> Sequence[int]:
        """Append in one transaction; the positions the events took."""
        streams: dict[UUID | str, str] = {}  # str(UUID) is slow; batches repeat ids
        records = []
        for s in stored_events:
            stream = streams.get(s.originator_id)
            if stream is None:
                stream = streams[s.originator_id] = str(s.originator_id)
            records.append(NewRecord(stream, s.originator_version, s.topic, s.state))
        with library_errors():
            return self.store.append(records, then=self._also(kwargs))

    def _also(self, kwargs: dict[str, Any]) -> Any:
        """Hook for writes that must share the events' transaction."""
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return _select_stream(self.store, "events", originator_id, gt, lte, desc, limit)


class ApswApplicationRecorder(ApswAggregateRecorder, ApplicationRecorder):
    """Adds the application sequence: notification id == global position."""

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        return self._append(stored_events, kwargs)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        after = 0 if start is None else (start - 1 if inclusive_of_start else start)
        with library_errors():
            records = list(self.store.read(max(after, 0), upto=stop, limit=limit, topics=topics))
        return [
            Notification(
                id=r.position,
                originator_id=to_originator_id(r.stream),
                originator_version=r.version,
                topic=r.topic,
                state=r.payload,
            )
            for r in records
        ]

    def max_notification_id(self) -> int | None:
        with library_errors():
            return self.store.head()[0] or None

    def subscribe(self, gt: int | None = None, topics: Sequence[str] = ()) -> Subscription[ApplicationRecorder]:
        return ApswSubscription(recorder=self, gt=gt, topics=topics)


class ApswSubscription(ListenNotifySubscription[ApswApplicationRecorder]):
    """Wakes on in-process commits at once, and polls for other processes'.

    SQLite has no LISTEN/NOTIFY across processes, so the pull loop waits on
    the commit signal with a timeout instead of indefinitely.
    """

    def __init__(self, recorder: ApswApplicationRecorder, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        self._signal = recorder.store.signal
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._signal.listen(self._has_been_notified)

    def stop(self) -> None:
        self._signal.unlisten(self._has_been_notified)
        super().stop()

    def _loop_on_pull(self) -> None:  # overrides the library's untimed wait
        try:
            self._pull()
            while not self._has_been_stopped:
                self._has_been_notified.wait(timeout=POLL_INTERVAL)
                self._pull()
        except BaseException as e:  # noqa: BLE001
            if self._thread_error is None:
                self._thread_error = e
            self.stop()


class ApswTrackingRecorder(ApswRecorder, TrackingRecorder):
    """Single-row-per-application tracking, moved forward only.

    Views (materialised projections) subclass this and write their own
    tables with :meth:`transaction`, calling :meth:`track` inside it so the
    view row and the tracking row commit together.
    """

    @contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        with library_errors(), self.store.transaction() as conn:
            yield conn

    def track(self, conn: apsw.Connection, *trackings: Tracking) -> None:
        """Record tracking inside an open transaction; many at once is one
        statement per application (only the highest id per name is kept)."""
        latest: dict[str, int] = {}
        for t in trackings:
            latest[t.application_name] = max(t.notification_id, latest.get(t.application_name, t.notification_id))
        for name, notification_id in latest.items():
            if not conn.execute(_UPSERT_TRACKING, (name, notification_id)).fetchall():
                raise IntegrityError(f"tracking for {name!r} is already at or beyond notification {notification_id}")

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.transaction() as conn:
            self.track(conn, tracking)

    def insert_trackings(self, trackings: Sequence[Tracking]) -> None:
        with self.transaction() as conn:
            self.track(conn, *trackings)

    def max_tracking_id(self, application_name: str) -> int | None:
        with library_errors():
            rows = self.store.query(
                "SELECT notification_id FROM tracking WHERE application_name = ?", (application_name,)
            )
        return rows[0][0] if rows else None


class ApswProcessRecorder(ApswTrackingRecorder, ApswApplicationRecorder, ProcessRecorder):
    """Events and the tracking of what caused them, in one transaction."""

    def _also(self, kwargs: dict[str, Any]) -> Any:
        tracking: Tracking | None = kwargs.get("tracking")
        if tracking is None:
            return None
        return lambda conn: self.track(conn, tracking)


class ApswSnapshotRecorder(ApswRecorder, AggregateRecorder):
    """Snapshots (or any non-"events" purpose) in their own plain table:
    they are caches, so they stay out of the chained, append-only log."""

    def __init__(self, store: SqliteEventStore, table: str) -> None:
        super().__init__(store)
        if not table.isidentifier():
            raise ValueError(f"bad table name {table!r}")
        self.table = table
        with library_errors(), store.transaction() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (stream TEXT, version INTEGER, topic TEXT, "
                "payload BLOB, PRIMARY KEY (stream, version)) WITHOUT ROWID"
            )

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        rows = [(str(s.originator_id), s.originator_version, s.topic, s.state) for s in stored_events]
        with library_errors(), self.store.transaction() as conn:
            conn.executemany(f"INSERT INTO {self.table} VALUES (?, ?, ?, ?)", rows)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return _select_stream(self.store, self.table, originator_id, gt, lte, desc, limit)


class ApswFactory(InfrastructureFactory[ApswTrackingRecorder]):
    """The one factory of this module, so ``PERSISTENCE_MODULE`` resolves."""

    SQLITE_DBNAME = "SQLITE_DBNAME"
    UOK_DB = "UOK_DB"
    UOK_SYNCHRONOUS = "UOK_SYNCHRONOUS"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        path = self.env.get(self.SQLITE_DBNAME) or self.env.get(self.UOK_DB)
        if not path or path == ":memory:" or path.startswith("file:"):
            keys = ", ".join(self.env.create_keys(self.SQLITE_DBNAME) + self.env.create_keys(self.UOK_DB))
            raise OSError(f"uok event log path not found (or not a file path) in environment keys: {keys}")
        with library_errors():
            self.store = SqliteEventStore(path, synchronous=self.env.get(self.UOK_SYNCHRONOUS) or "FULL")

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "events":
            return ApswAggregateRecorder(self.store)
        return ApswSnapshotRecorder(self.store, "stored_" + purpose)

    def application_recorder(self) -> ApplicationRecorder:
        return self._recorder(self.APPLICATION_RECORDER_TOPIC, ApswApplicationRecorder)

    def tracking_recorder(
        self, tracking_recorder_class: type[ApswTrackingRecorder] | None = None
    ) -> ApswTrackingRecorder:
        if tracking_recorder_class is not None:
            if not issubclass(tracking_recorder_class, ApswTrackingRecorder):
                raise TypeError(f"{tracking_recorder_class} is not an ApswTrackingRecorder")
            return tracking_recorder_class(self.store)
        return self._recorder(self.TRACKING_RECORDER_TOPIC, ApswTrackingRecorder)

    def process_recorder(self) -> ProcessRecorder:
        return self._recorder(self.PROCESS_RECORDER_TOPIC, ApswProcessRecorder)

    def _recorder(self, topic_key: str, default: type[Any]) -> Any:
        topic = self.env.get(topic_key)
        cls = resolve_topic(topic) if topic else default
        if not issubclass(cls, default):
            raise TypeError(f"{topic_key}={topic!r} is not a {default.__name__}")
        return cls(self.store)

    def close(self) -> None:
        self.store.close()
