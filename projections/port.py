"""What the projection machinery needs from storage, as protocols.

Two roles, both implemented on the event log file by
:class:`uok.adapters.projection_store.SqliteProjectionStore`:

* :class:`RecordSource` reads the raw log: pages of ``(position, topic,
  payload)`` covering consecutive position ranges, optionally only rows of
  some topics. Ranges rather than "next N rows" so that the reader always
  knows how far it has looked even when the filter skipped every row of a
  page: positions, commits and snapshot boundaries stay exact.
* :class:`ProjectionRepository` keeps each projection's parts, its tracked
  position and its snapshots, and writes a whole batch of them in ONE
  transaction, so a crash leaves every projection at a consistent position.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Protocol

import msgspec
from uok.domain.errors import RuntimeFailure

Row = tuple[int, str, bytes]  # position, topic, payload


class StoredHead(msgspec.Struct, frozen=True, kw_only=True):
    """A projection's tracked position as persisted."""

    name: str
    version: int
    position: int
    hash: bytes = b""  # chain hash of the log's event at ``position`` (b"" at 0)
    rebuilding: bool = False  # a rebuild started and has not finished
    parts: int = 0


class SnapshotWrite(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    manifest: dict[str, bytes]  # part key -> digest of its encoding (a delta: only parts changed since ``base``)
    blobs: dict[bytes, bytes]  # digest -> encoding, for parts new since the last snapshot
    base: int | None = (
        None  # None: a full manifest; else a delta against the full one at ``base`` (projections/manifests.py)
    )


class ProjectionWrite(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one commit writes for one projection."""

    name: str
    version: int
    expected_position: int  # optimistic check: the position we started from
    position: int
    hash: bytes
    rebuilding: bool
    parts: dict[str, tuple[bytes, bytes]]  # key -> (digest, encoding), parts changed since last commit
    part_count: int
    snapshots: tuple[SnapshotWrite, ...] = ()


class ProjectionConflict(RuntimeFailure):
    """Another process moved a projection while we were folding it."""


class RecordSource(Protocol):
    def head(self) -> tuple[int, bytes]: ...

    def hash_at(self, position: int) -> bytes | None: ...

    def scan(
        self, after: int, upto: int, *, topics: Collection[str] | None = None, page: int = 10_000
    ) -> Iterator[tuple[int, Sequence[Row]]]:
        """Yield ``(range_end, rows)`` for consecutive ranges ``(after, range_end]``."""


class ProjectionRepository(Protocol):
    def heads(self) -> dict[str, StoredHead]: ...

    def load_parts(self, name: str) -> dict[str, tuple[bytes, bytes]]:
        """key -> (digest, encoding) of the current state."""

    def reset(self, name: str, version: int, *, rebuilding: bool) -> None:
        """Forget the read model and its snapshots; position 0."""

    def commit(self, writes: Sequence[ProjectionWrite]) -> None:
        """All writes in one transaction; ProjectionConflict if a position moved."""

    def snapshot_manifest(self, name: str, version: int, position: int) -> tuple[int, Mapping[str, bytes]] | None:
        """(snapshot position, key -> digest) of the latest snapshot <= position,
        a delta resolved against its full base (None if that base is gone)."""

    def snapshot_manifests(
        self, wanted: Sequence[tuple[str, int]], position: int
    ) -> dict[str, tuple[int, Mapping[str, bytes]]]:
        """``snapshot_manifest`` of several read models ``(name, version)`` at
        once (a time-travel query's first reads); absent: none."""

    def full_manifest(self, name: str, version: int, position: int) -> dict[str, bytes] | None:
        """The manifest of the snapshot at exactly ``position`` if it is a full one."""

    def load_blobs(self, name: str, digests: Sequence[bytes]) -> dict[bytes, bytes]:
        """digest -> encoding, for the digests that exist."""

    def load_blobs_of(self, wanted: Mapping[str, Sequence[bytes]]) -> dict[str, dict[bytes, bytes]]:
        """``load_blobs`` of several read models at once: name -> digest -> encoding."""

    def snapshot_positions(self, name: str, version: int) -> list[int]: ...
