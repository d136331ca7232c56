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

import hashlib
import struct
from collections.abc import Collection, Iterator, Sequence

import apsw
import msgspec
from uok.adapters.sqlite_store import SqliteEventStore, translate
from uok.domain.log.chain import GENESIS, ChainBroken
from uok.projections.port import ProjectionConflict, ProjectionWrite, Row, StoredHead

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

_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack
_MANIFEST = msgspec.msgpack.Decoder(dict[str, bytes])
_IN_CHUNK = 5000  # digests per IN (...) list, well under SQLite's variable limit
_encode = msgspec.msgpack.encode


class SqliteProjectionStore:
    """:class:`uok.projections.port.RecordSource` and
    :class:`uok.projections.port.ProjectionRepository` on one event log file."""

    def __init__(self, store: SqliteEventStore, *, verify: bool = True):
        self.store = store
        self.verify = verify
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

    # ------------------------------------------------------------------ RecordSource
    def head(self) -> tuple[int, bytes]:
        return self.store.head()

    def hash_at(self, position: int) -> bytes | None:
        rows = self.store.query("SELECT hash FROM events WHERE position = ?", (position,))
        return rows[0][0] if rows else None

    def scan(
        self, after: int, upto: int, *, topics: Collection[str] | None = None, page: int = 10_000
    ) -> Iterator[tuple[int, Sequence[Row]]]:
        """Rows in consecutive position ranges of ``page``; each range is one
        short read (no statement stays open between ranges).

        With ``verify`` (the default) every row of the range is read and its
        chain hash recomputed, anchored at the stored hash of the event
        before ``after`` (GENESIS at 0); a row that does not match raises
        :class:`uok.domain.log.chain.ChainBroken`, so no read model is ever folded
        from an altered log. Rows of unwanted topics are then dropped in
        Python, still undecoded. Without it, SQLite filters by topic."""
        if not self.verify:
            yield from self._scan_unverified(after, upto, topics, page)
            return
        wanted = None if topics is None else frozenset(topics)
        sql = "SELECT position, stream, version, topic, payload, hash FROM events WHERE position > ? AND position <= ? ORDER BY position"
        prev = GENESIS if after == 0 else self.hash_at(after)
        if prev is None:
            raise ChainBroken(after, "the event before the first one read is missing")
        u64, u32, sha256 = _U64, _U32, hashlib.sha256
        lo = after
        while lo < upto:
            hi = min(lo + page, upto)
            rows = self._fetch(sql, (lo, hi))
            out = []
            expected = lo + 1
            for pos, stream, version, topic, payload, stored in rows:
                if pos != expected:
                    raise ChainBroken(expected, f"expected position {expected}, found {pos} (gap or reorder)")
                st, tp = stream.encode(), topic.encode()
                prev = sha256(
                    b"".join(
                        (prev, u64(pos), u32(len(st)), st, u64(version), u32(len(tp)), tp, u32(len(payload)), payload)
                    )
                ).digest()
                if prev != stored:
                    raise ChainBroken(
                        pos, "stored hash does not match the recomputed hash (the log was altered or damaged)"
                    )
                if wanted is None or topic in wanted:
                    out.append((pos, topic, payload))
                expected += 1
            if expected != hi + 1:
                raise ChainBroken(expected, f"events {expected}..{hi} are missing")
            yield hi, out
            lo = hi

    def _fetch(self, sql: str, params: tuple) -> list:
        with self.store._lock:
            try:
                return self.store.connection.execute(sql, params).fetchall()
            except apsw.Error as e:
                raise translate(e, self.store.path) from e

    def _scan_unverified(
        self, after: int, upto: int, topics: Collection[str] | None, page: int
    ) -> Iterator[tuple[int, Sequence[Row]]]:
        sql = "SELECT position, topic, payload FROM events WHERE position > ? AND position <= ?"
        extra: tuple = ()
        if topics is not None:
            topics = sorted(set(topics))
            if not topics:
                sql += " AND 0"
            else:
                sql += f" AND topic IN ({','.join('?' * len(topics))})"
                extra = tuple(topics)
        sql += " ORDER BY position"
        lo = after
        while lo < upto:
            hi = min(lo + page, upto)
            yield hi, self._fetch(sql, (lo, hi, *extra))
            lo = hi

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
                        (w.name, w.version, s.position, _encode(s.manifest)),
                    )
                conn.execute(
                    "UPDATE projection_state SET position = ?, hash = ?, rebuilding = ?, parts = ? WHERE name = ?",
                    (w.position, w.hash, int(w.rebuilding), w.part_count, w.name),
                )

    def snapshot_manifest(self, name: str, version: int, position: int) -> tuple[int, dict[str, bytes]] | None:
        if not self._has_schema():
            return None
        rows = self.store.query(
            "SELECT position, manifest FROM projection_snapshots WHERE name = ? AND version = ? AND position <= ? "
            "ORDER BY position DESC LIMIT 1",
            (name, version, position),
        )
        return (rows[0][0], _MANIFEST.decode(rows[0][1])) if rows else None

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
