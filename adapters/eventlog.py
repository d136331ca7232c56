"""Typed events over the byte-level store port.

The store knows positions, streams, versions and bytes; the kernel knows
msgspec events. ``EventLog`` sits between: it assigns each event the next
version of its stream (optimistic concurrency: a racing writer of the same
stream makes the append fail whole), encodes, appends in one transaction,
and decodes on the way back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from uok.adapters.integrity import verified
from uok.domain.events import Event
from uok.domain.log import codec
from uok.domain.log.store import EventStorePort, NewRecord, StoredRecord


class EventLog:
    """``verify`` (default on): whole-range reads recompute the hash chain as
    they stream (see :mod:`uok.adapters.integrity`), so a damaged log raises
    ``ChainBroken`` instead of being folded."""

    def __init__(self, store: EventStorePort, *, verify: bool = True):
        self.store = store
        self.verify = verify
        self._versions: dict[str, int] = {}

    def _next_version(self, stream: str, pending: dict[str, int]) -> int:
        if stream in pending:
            v = pending[stream] + 1
        elif stream in self._versions:
            v = self._versions[stream] + 1
        else:
            v = self.store.stream_version(stream) + 1
        pending[stream] = v
        return v

    def append(
        self,
        events: Sequence[Event],
        *,
        versions: Mapping[str, int] | None = None,
        expect: Mapping[str, int] | None = None,
    ) -> list[int]:
        """Append events atomically; returns their global positions.

        ``versions``: stream -> the version the caller's own fold says the
        stream is at (a run passes its kernel's unit versions): the events
        take the versions after it, so a stream another process moved since
        that fold makes the append fail whole (true optimistic concurrency,
        instead of reading the store's version at append time).
        ``expect``: stream -> version checked inside the transaction
        (:meth:`EventStorePort.append`; a run's lease)."""
        if not events:
            return []
        pending: dict[str, int] = dict(versions) if versions else {}
        records = []
        for e in events:
            stream = e.stream()
            topic, payload = codec.encode(e)
            version = e.pinned_version()  # writer sequence, message send/read: see Event.pinned_version
            if version is None:
                version = self._next_version(stream, pending)
            else:
                pending[stream] = version
            records.append(NewRecord(stream=stream, version=version, topic=topic, payload=payload))
        try:
            positions = self.store.append(records, expect=expect) if expect else self.store.append(records)
        except Exception:
            # our cached versions may be stale now; re-read on next use
            for stream in pending:
                self._versions.pop(stream, None)
            raise
        self._versions.update(pending)
        return positions

    def defer_sync(self, on: bool = True) -> bool:
        """Group commits until :meth:`sync` (a store that cannot, e.g.
        PostgreSQL's, commits durably each time: returns False)."""
        defer = getattr(self.store, "defer_sync", None)
        return bool(defer(on)) if defer is not None else False

    def group(self, on: bool = True) -> bool:
        """Appends share one transaction until :meth:`commit` or :meth:`sync`
        (SQLite: :meth:`SqliteEventStore.group`); a store that cannot
        commits each append on its own: returns False."""
        group = getattr(self.store, "group", None)
        return bool(group(on)) if group is not None else False

    def keep_appended(self, on: bool = True) -> None:
        """Keep what this log appends for the read models' catch-up at the end
        of a run (SQLite: :meth:`SqliteEventStore.keep_appended`); a store
        that cannot does nothing."""
        keep = getattr(self.store, "keep_appended", None)
        if keep is not None:
            keep(on)

    def grouped(self) -> bool:
        """Whether a group's transaction is open now: until it commits no
        other process can append (SQLite: it holds the write lock)."""
        return bool(getattr(self.store, "group_open", False))

    def commit(self) -> None:
        """Commit the open group of appends, if any (not necessarily durable: :meth:`sync`)."""
        commit = getattr(self.store, "commit", None)
        if commit is not None:
            commit()

    def sync(self) -> None:
        """Make every commit so far durable: call it before acting on them."""
        sync = getattr(self.store, "sync", None)
        if sync is not None:
            sync()

    def records(self, after: int = 0, *, upto: int | None = None, stream: str | None = None) -> Iterator[StoredRecord]:
        records = self.store.read(after, upto=upto, stream=stream)
        if self.verify and stream is None:
            return verified(self.store, records, after)
        return records

    def events(
        self, after: int = 0, *, upto: int | None = None, stream: str | None = None, only: frozenset[str] | None = None
    ) -> Iterator[tuple[int, Event]]:
        """(position, event) pairs in log order; a payload that does not
        decode raises :class:`codec.DecodeError` naming its position.
        ``only``: topics to decode and yield; every other record is still
        read (and its chain hash checked) but not decoded."""
        decode = codec.decode
        for r in self.records(after, upto=upto, stream=stream):
            if only is not None and r.topic not in only:
                continue
            try:
                e = decode(r.topic, r.payload)
            except codec.DecodeError as exc:
                raise type(exc)(f"event at position {r.position}: {exc}") from None
            yield r.position, e

    @staticmethod
    def decode_all(records: Iterable[StoredRecord]) -> Iterator[tuple[int, Event]]:
        for r in records:
            yield r.position, codec.decode(r.topic, r.payload)
