"""Projection storage beside a PostgreSQL event log (same schema).

The four tables of :mod:`uok.adapters.projection_store` (state, parts,
snapshot manifests, content-addressed blobs), created with the log by
:mod:`uok.adapters.postgres.schema`. A batch of projection updates commits
in ONE transaction; the tracked position of each projection is checked
under ``SELECT ... FOR UPDATE``, so two processes folding the same read
model cannot both move it from the same position (the loser gets
:class:`uok.projections.port.ProjectionConflict`), as ``BEGIN IMMEDIATE``
guarantees on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg import sql
from uok.adapters.record_source import ChainedRecordSource
from uok.projections import manifests
from uok.projections.port import ProjectionConflict, ProjectionWrite, StoredHead


class PostgresProjectionStore(ChainedRecordSource):
    """:class:`uok.projections.port.RecordSource` and
    :class:`uok.projections.port.ProjectionRepository` in the log's schema."""

    def __init__(self, store, *, verify: bool = True):
        super().__init__(store, verify=verify)
        self._s = sql.Identifier(store.target.schema)

    def _q(self, text: str) -> sql.Composed:
        return sql.SQL(text).format(s=self._s)

    def heads(self) -> dict[str, StoredHead]:
        rows = self.store.query(
            self._q("SELECT name, version, position, hash, rebuilding, parts FROM {s}.projection_state")
        )
        return {
            r[0]: StoredHead(name=r[0], version=r[1], position=r[2], hash=bytes(r[3]), rebuilding=r[4], parts=r[5])
            for r in rows
        }

    def load_parts(self, name: str) -> dict[str, tuple[bytes, bytes]]:
        rows = self.store.query(self._q("SELECT key, digest, data FROM {s}.projection_parts WHERE name = %s"), (name,))
        return {k: (bytes(d), bytes(data)) for k, d, data in rows}

    def reset(self, name: str, version: int, *, rebuilding: bool) -> None:
        with self.store.transaction() as conn:
            conn.execute(self._q("SELECT 1 FROM {s}.projection_state WHERE name = %s FOR UPDATE"), (name,))
            for table in ("projection_parts", "projection_snapshots", "projection_blobs"):
                conn.execute(self._q(f"DELETE FROM {{s}}.{table} WHERE name = %s"), (name,))
            conn.execute(
                self._q(
                    "INSERT INTO {s}.projection_state (name, version, position, hash, rebuilding, parts) "
                    "VALUES (%s, %s, 0, '', %s, 0) ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
                    "position = 0, hash = '', rebuilding = excluded.rebuilding, parts = 0"
                ),
                (name, version, rebuilding),
            )

    def commit(self, writes: Sequence[ProjectionWrite]) -> None:
        with self.store.transaction() as conn:
            for w in writes:
                row = conn.execute(
                    self._q("SELECT position, version FROM {s}.projection_state WHERE name = %s FOR UPDATE"), (w.name,)
                ).fetchone()
                if row is None or row[0] != w.expected_position or row[1] != w.version:
                    raise ProjectionConflict(f"projection {w.name} moved (expected position {w.expected_position})")
                with conn.cursor() as cur:
                    if w.parts:
                        cur.executemany(
                            self._q(
                                "INSERT INTO {s}.projection_parts (name, key, digest, data) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT (name, key) DO UPDATE SET digest = excluded.digest, data = excluded.data"
                            ),
                            [(w.name, k, d, data) for k, (d, data) in w.parts.items()],
                        )
                    for snap in w.snapshots:
                        if snap.blobs:
                            cur.executemany(
                                self._q(
                                    "INSERT INTO {s}.projection_blobs (name, digest, data) VALUES (%s, %s, %s) "
                                    "ON CONFLICT DO NOTHING"
                                ),
                                [(w.name, d, data) for d, data in snap.blobs.items()],
                            )
                        cur.execute(
                            self._q(
                                "INSERT INTO {s}.projection_snapshots (name, version, position, manifest) "
                                "VALUES (%s, %s, %s, %s) ON CONFLICT (name, version, position) "
                                "DO UPDATE SET manifest = excluded.manifest"
                            ),
                            (w.name, w.version, snap.position, manifests.encode(snap.manifest, snap.base)),
                        )
                conn.execute(
                    self._q(
                        "UPDATE {s}.projection_state SET position = %s, hash = %s, rebuilding = %s, parts = %s "
                        "WHERE name = %s"
                    ),
                    (w.position, w.hash, w.rebuilding, w.part_count, w.name),
                )

    def snapshot_manifest(self, name: str, version: int, position: int) -> tuple[int, Mapping[str, bytes]] | None:
        rows = self.store.query(
            self._q(
                "SELECT position, manifest FROM {s}.projection_snapshots WHERE name = %s AND version = %s "
                "AND position <= %s ORDER BY position DESC LIMIT 1"
            ),
            (name, version, position),
        )
        if not rows:
            return None
        manifest = manifests.resolve(bytes(rows[0][1]), lambda base: self._manifest_row(name, version, base))
        return None if manifest is None else (rows[0][0], manifest)

    def snapshot_manifests(
        self, wanted: Sequence[tuple[str, int]], position: int
    ) -> dict[str, tuple[int, Mapping[str, bytes]]]:
        out = {}
        for name, version in wanted:
            snap = self.snapshot_manifest(name, version, position)
            if snap is not None:
                out[name] = snap
        return out

    def _manifest_row(self, name: str, version: int, position: int) -> bytes | None:
        rows = self.store.query(
            self._q("SELECT manifest FROM {s}.projection_snapshots WHERE name = %s AND version = %s AND position = %s"),
            (name, version, position),
        )
        return bytes(rows[0][0]) if rows else None

    def full_manifest(self, name: str, version: int, position: int) -> dict[str, bytes] | None:
        raw = self._manifest_row(name, version, position)
        return manifests.full(raw) if raw is not None and manifests.is_full(raw) else None

    def load_blobs(self, name: str, digests: Sequence[bytes]) -> dict[bytes, bytes]:
        """Blobs are immutable (content-addressed): one statement, no transaction."""
        if not digests:
            return {}
        rows = self.store.query(
            self._q("SELECT digest, data FROM {s}.projection_blobs WHERE name = %s AND digest = ANY(%s::bytea[])"),
            (name, list(digests)),
        )
        return {bytes(d): bytes(data) for d, data in rows}

    def load_blobs_of(self, wanted: Mapping[str, Sequence[bytes]]) -> dict[str, dict[bytes, bytes]]:
        return {name: self.load_blobs(name, digests) for name, digests in wanted.items()}

    def snapshot_at_or_before(self, name: str, version: int, position: int) -> tuple[int, dict[str, bytes]] | None:
        """(snapshot position, key -> encoding) of the latest snapshot <= position."""
        snap = self.snapshot_manifest(name, version, position)
        if snap is None:
            return None
        blobs = self.load_blobs(name, list(set(snap[1].values())))
        return snap[0], {k: blobs[d] for k, d in snap[1].items()}

    def snapshot_positions(self, name: str, version: int) -> list[int]:
        rows = self.store.query(
            self._q("SELECT position FROM {s}.projection_snapshots WHERE name = %s AND version = %s ORDER BY position"),
            (name, version),
        )
        return [r[0] for r in rows]

    def storage(self) -> dict[str, int]:
        """Bytes held per table (parts, snapshot manifests, blobs), for status."""
        q = self.store.query
        return {
            "parts": q(self._q("SELECT coalesce(sum(length(data)), 0) FROM {s}.projection_parts"))[0][0],
            "manifests": q(self._q("SELECT coalesce(sum(length(manifest)), 0) FROM {s}.projection_snapshots"))[0][0],
            "blobs": q(self._q("SELECT coalesce(sum(length(data)), 0) FROM {s}.projection_blobs"))[0][0],
        }
