"""Projection storage inside the event log file (apsw).

Four tables beside ``events`` (which this module only reads):

* ``projection_state(name, version, position, hash, rebuilding, parts)``:
  one row per projection, its tracked position and the chain hash of the
  event at that position (so a read model is never trusted against a
  different log that happens to sit at the same path);
* ``projection_parts(name, key, digest, data)``: the current state, one row
  per part (msgpack), upserted only for parts that changed;
* ``projection_snapshots(name, version, position, manifest)``: manifests
  ``part key -> digest`` at every multiple of the snapshot interval;
* ``projection_blobs(name, digest, data)``: part encodings by content, so a
  snapshot stores only the parts that changed since the previous one.

Every write goes through :meth:`SqliteEventStore.transaction` (``BEGIN
IMMEDIATE`` under the store's lock): a batch of projection updates commits
whole or not at all, exactly like an append.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

from uok.adapters.record_source import ChainedRecordSource
from uok.adapters.sqlite_store import SqliteEventStore
from uok.projections import manifests
from uok.projections.port import ProjectionConflict, ProjectionWrite, StoredHead

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS projection_state (
        name       TEXT PRIMARY KEY,
        version    INTEGER NOT NULL,
        position   INTEGER NOT NULL,
        hash       BLOB NOT NULL,
        rebuilding INTEGER NOT NULL DEFAULT 0,
        parts      INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS projection_parts (
        name   TEXT NOT NULL,
        key    TEXT NOT NULL,
        digest BLOB NOT NULL,
        data   BLOB NOT NULL,
        PRIMARY KEY (name, key))""",
    """CREATE TABLE IF NOT EXISTS projection_snapshots (
        name     TEXT NOT NULL,
        version  INTEGER NOT NULL,
        position INTEGER NOT NULL,
        manifest BLOB NOT NULL,
        PRIMARY KEY (name, version, position))""",
    """CREATE TABLE IF NOT EXISTS projection_blobs (
        name   TEXT NOT NULL,
        digest BLOB NOT NULL,
        data   BLOB NOT NULL,
        PRIMARY KEY (name, digest))""",
)

_IN_CHUNK = 5000  # digests per IN (...) list, well under SQLite's variable limit


class SqliteProjectionStore(ChainedRecordSource):
    """:class:`uok.projections.port.RecordSource` (reading the log, see
    :mod:`uok.adapters.record_source`) and
    :class:`uok.projections.port.ProjectionRepository` on one event log file."""

    def __init__(self, store: SqliteEventStore, *, verify: bool = True):
        super().__init__(store, verify=verify)
        self._ready = False

    def _has_schema(self) -> bool:
        """Reads never create tables: a log nobody projected has no read models."""
        if not self._ready:
            have = {r[0] for r in self.store.query("SELECT name FROM sqlite_master WHERE type='table'")}
            self._ready = {"projection_state", "projection_parts", "projection_snapshots", "projection_blobs"} <= have
        return self._ready

    def _ensure_schema(self) -> None:
        if not self._has_schema():
            with self.store.transaction() as conn:
                for statement in _SCHEMA:
                    conn.execute(statement)
            self._ready = True

    # ------------------------------------------------------------------ repository
    def heads(self) -> dict[str, StoredHead]:
        if not self._has_schema():
            return {}
        rows = self.store.query("SELECT name, version, position, hash, rebuilding, parts FROM projection_state")
        return {
            r[0]: StoredHead(
                name=r[0], version=r[1], position=r[2], hash=bytes(r[3]), rebuilding=bool(r[4]), parts=r[5]
            )
            for r in rows
        }

    def load_parts(self, name: str) -> dict[str, tuple[bytes, bytes]]:
        if not self._has_schema():
            return {}
        rows = self.store.query("SELECT key, digest, data FROM projection_parts WHERE name = ?", (name,))
        return {k: (bytes(d), bytes(data)) for k, d, data in rows}

    def reset(self, name: str, version: int, *, rebuilding: bool) -> None:
        self._ensure_schema()
        with self.store.transaction() as conn:
            for table in ("projection_parts", "projection_snapshots", "projection_blobs"):
                conn.execute(f"DELETE FROM {table} WHERE name = ?", (name,))
            conn.execute(
                "INSERT OR REPLACE INTO projection_state (name, version, position, hash, rebuilding, parts) "
                "VALUES (?, ?, 0, X'', ?, 0)",
                (name, version, int(rebuilding)),
            )

    def commit(self, writes: Sequence[ProjectionWrite]) -> None:
        self._ensure_schema()
        with self.store.transaction() as conn:
            for w in writes:
                row = conn.execute(
                    "SELECT position, version FROM projection_state WHERE name = ?", (w.name,)
                ).fetchall()
                if not row or row[0][0] != w.expected_position or row[0][1] != w.version:
                    raise ProjectionConflict(f"projection {w.name} moved (expected position {w.expected_position})")
                if w.parts:
                    conn.executemany(
                        "INSERT OR REPLACE INTO projection_parts (name, key, digest, data) VALUES (?, ?, ?, ?)",
                        [(w.name, k, d, data) for k, (d, data) in w.parts.items()],
                    )
                for s in w.snapshots:
                    conn.executemany(
                        "INSERT OR IGNORE INTO projection_blobs (name, digest, data) VALUES (?, ?, ?)",
                        [(w.name, d, data) for d, data in s.blobs.items()],
                    )
                    conn.execute(
                        "INSERT OR REPLACE INTO projection_snapshots (name, version, position, manifest) VALUES (?, ?, ?, ?)",
                        (w.name, w.version, s.position, manifests.encode(s.manifest, s.base)),
                    )
                conn.execute(
                    "UPDATE projection_state SET position = ?, hash = ?, rebuilding = ?, parts = ? WHERE name = ?",
                    (w.position, w.hash, int(w.rebuilding), w.part_count, w.name),
                )

    def snapshot_manifest(self, name: str, version: int, position: int) -> tuple[int, Mapping[str, bytes]] | None:
        if not self._has_schema():
            return None
        rows = self.store.query(
            "SELECT position, manifest FROM projection_snapshots WHERE name = ? AND version = ? AND position <= ? "
            "ORDER BY position DESC LIMIT 1",
            (name, version, position),
        )
        if not rows:
            return None
        manifest = manifests.resolve(rows[0][1], lambda base: self._manifest_row(name, version, base))
        return None if manifest is None else (rows[0][0], manifest)

    def snapshot_manifests(
        self, wanted: Sequence[tuple[str, int]], position: int
    ) -> dict[str, tuple[int, Mapping[str, bytes]]]:
        """Two statements whatever the number of read models: the latest
        snapshot of each at or before ``position``, then the full manifests
        their deltas are taken against."""
        if not wanted or not self._has_schema():
            return {}
        one = (
            "SELECT * FROM (SELECT name, version, position, manifest FROM projection_snapshots "
            "WHERE name = ? AND version = ? AND position <= ? ORDER BY position DESC LIMIT 1)"
        )
        rows = self.store.query(
            " UNION ALL ".join([one] * len(wanted)), [x for n, v in wanted for x in (n, v, position)]
        )
        raws = {name: (version, pos, bytes(raw)) for name, version, pos, raw in rows}
        bases = [(n, v, b) for n, (v, _p, raw) in raws.items() if (b := manifests.delta_base(raw))]
        full: dict[tuple[str, int, int], bytes] = {}
        if bases:
            marks = ",".join(["(?,?,?)"] * len(bases))
            found = self.store.query(
                f"SELECT name, version, position, manifest FROM projection_snapshots "
                f"WHERE (name, version, position) IN (VALUES {marks})",
                [x for b in bases for x in b],
            )
            full = {(n, v, p): bytes(raw) for n, v, p, raw in found}
        out = {}
        for name, (version, pos, raw) in raws.items():
            manifest = manifests.resolve(raw, partial(_full_of, full, name, version))
            if manifest is not None:
                out[name] = (pos, manifest)
        return out

    def _manifest_row(self, name: str, version: int, position: int) -> bytes | None:
        rows = self.store.query(
            "SELECT manifest FROM projection_snapshots WHERE name = ? AND version = ? AND position = ?",
            (name, version, position),
        )
        return bytes(rows[0][0]) if rows else None

    def full_manifest(self, name: str, version: int, position: int) -> dict[str, bytes] | None:
        raw = self._manifest_row(name, version, position) if self._has_schema() else None
        return manifests.full(raw) if raw is not None and manifests.is_full(raw) else None

    def load_blobs(self, name: str, digests: Sequence[bytes]) -> dict[bytes, bytes]:
        """Blobs are immutable (content-addressed), so no transaction is needed."""
        if not self._has_schema():
            return {}
        out: dict[bytes, bytes] = {}
        digests = list(digests)
        for i in range(0, len(digests), _IN_CHUNK):  # one statement per chunk, not per part
            chunk = digests[i : i + _IN_CHUNK]
            sql = (
                f"SELECT digest, data FROM projection_blobs WHERE name = ? AND digest IN ({','.join('?' * len(chunk))})"
            )
            out.update((bytes(d), bytes(data)) for d, data in self.store.query(sql, (name, *chunk)))
        return out

    def load_blobs_of(self, wanted: Mapping[str, Sequence[bytes]]) -> dict[str, dict[bytes, bytes]]:
        """One statement per chunk of (name, digest) pairs, whatever the read models."""
        out: dict[str, dict[bytes, bytes]] = {name: {} for name in wanted}
        if not self._has_schema():
            return out
        pairs = [(name, d) for name, ds in wanted.items() for d in ds]
        step = _IN_CHUNK // 2
        for i in range(0, len(pairs), step):
            chunk = pairs[i : i + step]
            marks = ",".join(["(?,?)"] * len(chunk))
            sql = f"SELECT name, digest, data FROM projection_blobs WHERE (name, digest) IN (VALUES {marks})"
            for name, d, data in self.store.query(sql, [x for pair in chunk for x in pair]):
                out[name][bytes(d)] = bytes(data)
        return out

    def snapshot_at_or_before(self, name: str, version: int, position: int) -> tuple[int, dict[str, bytes]] | None:
        """(snapshot position, key -> encoding) of the latest snapshot <= position."""
        snap = self.snapshot_manifest(name, version, position)
        if snap is None:
            return None
        blobs = self.load_blobs(name, list(set(snap[1].values())))
        return snap[0], {k: blobs[d] for k, d in snap[1].items()}

    def snapshot_positions(self, name: str, version: int) -> list[int]:
        if not self._has_schema():
            return []
        rows = self.store.query(
            "SELECT position FROM projection_snapshots WHERE name = ? AND version = ? ORDER BY position",
            (name, version),
        )
        return [r[0] for r in rows]

    def storage(self) -> dict[str, int]:
        """Bytes held per table (parts, snapshot manifests, blobs), for status."""
        if not self._has_schema():
            return {"parts": 0, "manifests": 0, "blobs": 0}
        q = self.store.query
        return {
            "parts": q("SELECT coalesce(sum(length(data)), 0) FROM projection_parts")[0][0],
            "manifests": q("SELECT coalesce(sum(length(manifest)), 0) FROM projection_snapshots")[0][0],
            "blobs": q("SELECT coalesce(sum(length(data)), 0) FROM projection_blobs")[0][0],
        }


def _full_of(full: dict[tuple[str, int, int], bytes], name: str, version: int, position: int) -> bytes | None:
    return full.get((name, version, position))
