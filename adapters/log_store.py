"""What the adapters need from an event log beyond the kernel's port, and
the projection store beside each kind of log. Targets become stores in
:mod:`uok.adapters.stores`.

The kernel needs :class:`uok.domain.log.store.EventStorePort` only. Commands
that verify, export, project, follow or copy a log also need the few
operations below; both stores implement them
(:class:`uok.adapters.sqlite_store.SqliteEventStore`,
:class:`uok.adapters.postgres.store.PostgresEventStore`), so no adapter
reaches for a driver or writes SQL against ``events`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol

from uok.domain.log.store import EventStorePort, StoredRecord


class LogStore(EventStorePort, Protocol):
    @property
    def location(self) -> str:
        """The log as shown to people: a path, or a URL with its password masked."""

    def count(self) -> int: ...

    def last_of_stream(self, stream: str) -> StoredRecord | None:
        """The stream's latest record (highest version), or None."""

    def hash_at(self, position: int) -> bytes | None:
        """The chain hash stored at ``position`` (None if there is no such event)."""

    def range_rows(self, lo: int, hi: int, topics: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """Rows ``lo < position <= hi``: (position, stream, version, topic,
        payload, hash), or with ``topics`` (position, topic, payload) of those only."""

    def verify_chain(self, after: int = 0) -> tuple[int, bytes]:
        """Recompute the chain to the head: ``(count, head hash)``; raises ChainBroken."""

    def integrity_problems(self) -> list[str]:
        """Damage the store can see besides the chain (empty: none)."""


def is_url(target: str | os.PathLike[str]) -> bool:
    from uok.adapters.stores import is_url as _is_url

    return _is_url(target)


def open_log_store(
    target: str | os.PathLike[str], *, create: bool = False, readonly: bool = False, synchronous: str = "FULL"
) -> LogStore:
    """The store at ``target`` (a file path, or a ``postgresql://`` URL that
    needs the ``postgres`` extra), through :func:`uok.adapters.stores.open_event_store`."""
    from uok.adapters.stores import open_event_store

    return open_event_store(target, create=create, readonly=readonly, synchronous=synchronous)


def projection_store(store: EventStorePort, *, verify: bool = True) -> Any:
    """The projection store beside ``store`` (same file, or same schema)."""
    from uok.adapters.sqlite_store import SqliteEventStore

    if isinstance(store, SqliteEventStore):
        from uok.adapters.projection_store import SqliteProjectionStore

        return SqliteProjectionStore(store, verify=verify)
    from uok.adapters.postgres.projections import PostgresProjectionStore
    from uok.adapters.postgres.store import PostgresEventStore

    if isinstance(store, PostgresEventStore):
        return PostgresProjectionStore(store, verify=verify)
    raise TypeError(f"no projection store for a {type(store).__name__}")
