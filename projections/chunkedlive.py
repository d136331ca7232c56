"""The runner's state of a read model whose large parts snapshots store as
chunks (projections/chunks.py), re-encoding only the chunks that changed.

A large part (more than ``chunk_over`` entries: a plan of thousands of
units) changes a few entries at a time while a run goes on. Re-encoding
it whole at every snapshot made the run's end catch-up cost grow with the
plan's size times the run's length (a 10,000-task plan: ~1,200 snapshots
of a ~1 MB part). So :class:`ChunkedLive` remembers which entries each
event changed (``entry``) and, per large part, its chunks as last encoded
and every entry's ordinal; a snapshot re-encodes the chunks holding the
changed entries and the index. The part's whole encoding (its row in
``projection_parts``) is made only when a commit writes it.
"""

from __future__ import annotations

import itertools
from typing import Any

from uok.projections import chunks
from uok.projections.base import PartitionedProjection, Projection
from uok.projections.live import Live, digest
from uok.projections.port import ProjectionWrite


class _Chunks:
    """A large part's chunks as last encoded: their digests, the index naming
    them (and its digest), and the entries' keys in order (their ordinals)."""

    __slots__ = ("digests", "index", "index_digest", "order", "ordinal")

    def __init__(self) -> None:
        self.digests: list[bytes] = []
        self.order: list[str] = []
        self.ordinal: dict[str, int] = {}
        self.index = self.index_digest = b""


class ChunkedLive(Live):
    __slots__ = ("chunked", "dirty", "stale")

    def __init__(self, proj: Projection, start: int = 0, rebuilding: bool = False):
        super().__init__(proj, start, rebuilding)
        self.dirty: dict[str, set[str]] = {}  # part -> entries folded since its chunks were last encoded
        self.chunked: dict[str, _Chunks] = {}  # large parts' chunks as last encoded
        self.stale: set[str] = set()  # large parts whose whole encoding (``encoded``) is not made yet

    def load(self, stored: dict[str, tuple[bytes, bytes]]) -> None:
        super().load(stored)
        self.dirty, self.chunked, self.stale = {}, {}, set()

    def fold(self, position: int, event: Any) -> None:
        super().fold(position, event)
        k = self.key(event)
        if k.__class__ is str:
            e = self.proj.entry(event)  # type: ignore[attr-defined]
            if e is not None:
                seen = self.dirty.get(k)
                if seen is None:
                    self.dirty[k] = {e}
                else:
                    seen.add(e)

    def _encode_touched(self) -> None:
        proj: Any = self.proj
        over, entries, parts = proj.chunk_over, proj.entries, self.parts
        large = [k for k in self.touched if k in self.chunked or len(entries(parts[k])) > over]
        if large:  # encoded whole when a commit writes them (write), as chunks when a snapshot offers them
            self.stale.update(large)
            self.unsaved.update(large)
            self.unsnapped.update(large)
            self.touched.difference_update(large)
        super()._encode_touched()

    def write(self, position: int, hash_: bytes, *, finished: bool) -> ProjectionWrite:
        self._encode_touched()
        if self.stale:
            enc, parts, encoded = self._enc, self.parts, self.encoded
            for k in self.stale:
                data = enc(parts[k])
                encoded[k] = (digest(data), data)
            self.stale = set()
        return super().write(position, hash_, finished=finished)

    def _keys(self) -> list[str]:
        return sorted(self.encoded.keys() | self.stale)

    def _stored(self, k: str, blobs: dict[bytes, bytes]) -> tuple[bytes, bytes]:
        proj: Any = self.proj
        dirty = self.dirty.pop(k, None)
        known = self.chunked.get(k)
        if known is None and k not in self.stale:
            d, data = self.encoded[k]
            if proj.count(data) <= proj.chunk_over:
                return d, data
        part = self.parts.get(k)
        if part is None:  # a stored part not decoded since it was loaded (its encoding is the stored one)
            self.lazy.pop(k, None)
            part = self.parts[k] = self._dec_part(self.encoded[k][1])
        entries = proj.entries(part)
        if known is None:  # a part seen large for the first time: every chunk (a blob stored before is kept once)
            known = self.chunked[k] = _Chunks()
        elif dirty is None and len(entries) == len(known.order):
            return known.index_digest, known.index
        size, order, ordinal = proj.chunk, known.order, known.ordinal
        changed = {ordinal[e] // size for e in dirty or () if e in ordinal}
        if len(entries) > len(order):  # entries added at the end, in their chunks
            first = len(order)
            for i, e in enumerate(itertools.islice(entries, first, None), first):
                order.append(e)
                ordinal[e] = i
            changed.update(range(first // size, (len(order) + size - 1) // size))
        enc, of_entries, digests = self._enc, proj.of_entries, known.digests
        for c in sorted(changed):
            raw = enc(of_entries({e: entries[e] for e in order[c * size : (c + 1) * size]}))
            cd = digest(raw)
            if c == len(digests):
                digests.append(cd)
            elif digests[c] == cd:
                continue
            else:
                digests[c] = cd
            blobs[cd] = raw
        known.index = chunks.encode_index(digests)
        known.index_digest = digest(known.index)
        return known.index_digest, known.index


def live_of(proj: Projection, start: int = 0, rebuilding: bool = False) -> Live:
    """The runner's state of ``proj``: a :class:`ChunkedLive` for a read model
    whose large parts are stored as chunks, a :class:`Live` otherwise."""
    if isinstance(proj, PartitionedProjection) and proj.chunk:
        return ChunkedLive(proj, start, rebuilding)
    return Live(proj, start, rebuilding)
