"""One projection's state while it is being folded: its parts, and the
bookkeeping of which parts are not yet encoded, committed or snapshotted.

A part is re-encoded only when it was touched since its last encoding; a
commit writes the parts changed since the last commit; a snapshot writes
a manifest of every part's digest plus the encodings that are new since the
previous snapshot (unchanged parts are shared by digest); a large part of
a projection that opts in is stored in snapshots as chunks and an index
(projections/chunks.py). A projection that is not partitioned is handled
as one part (key ``""``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import msgspec
from uok.domain.events import Event
from uok.projections import chunks
from uok.projections.base import PartitionedProjection, Projection
from uok.projections.lazyparts import Encoded, Fetch, fetch_all, read
from uok.projections.port import ProjectionWrite, SnapshotWrite

SINGLE = ""  # the one part of a projection that is not partitioned


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class Live:
    """One projection's in-memory parts plus the bookkeeping of what is
    not yet encoded, committed or snapshotted."""

    __slots__ = (
        "_dec",
        "_dec_part",
        "_enc",
        "apply_part",
        "committed",
        "encoded",
        "fetch",
        "full",
        "key",
        "lazy",
        "name",
        "new_part",
        "parts",
        "proj",
        "rebuilding",
        "shared",
        "since_full",
        "snaps",
        "start",
        "touched",
        "unread",
        "unsaved",
        "unsnapped",
        "version",
    )

    def __init__(self, proj: Projection, start: int = 0, rebuilding: bool = False):
        self.proj, self.name, self.version = proj, proj.name, proj.version
        self.parts: dict[str, Any] = {}
        self.encoded: dict[str, tuple[bytes, bytes]] = {}
        self.touched: set[str] = set()
        self.unsaved: set[str] = set()
        self.unsnapped: set[str] = set()
        self.start = self.committed = start
        self.rebuilding = rebuilding
        self.snaps: list[SnapshotWrite] = []
        self.since_full: set[str] = set()  # parts offered to a snapshot since the last full one
        # (position, manifest) of the last full snapshot, what deltas are taken against; a fold
        # from zero starts against the empty manifest at 0
        self.full: tuple[int, dict[str, bytes]] | None = (0, {})
        self.shared: dict[str, bytes] = {}  # parts borrowed from a cache: copied (decoded) before a fold
        # stored parts not decoded yet: decoded when a fold touches them; an Encoded one (time travel)
        # is known by digest and read with ``fetch`` when needed
        self.lazy: dict[str, bytes | Encoded] = {}
        # a stored snapshot's parts not read yet (time travel), ``key -> digest``, shared read-only
        # with the manifest it came from: a part in ``parts`` or ``lazy`` overrides its entry here
        self.unread: Mapping[str, bytes] = _NONE
        self.fetch: Fetch = _nothing
        # a partitioned projection's own parts, or the whole state as one part
        self.key: Callable[[Event], str | None]
        self.apply_part: Callable[[Any, int, Event], Any]
        self.new_part: Callable[[str], Any]
        self._enc: Callable[[Any], bytes]
        self._dec: Callable[[bytes], Any]
        if isinstance(proj, PartitionedProjection):
            self.key, self.apply_part, self.new_part = proj.key, proj.apply_part, proj.new_part
            self._enc, self._dec = msgspec.msgpack.Encoder().encode, _decoder(proj.part_type)
            if proj.chunk:  # a snapshot's part may be an index of chunks (chunks.py)
                self._dec_part, self._dec = self._dec, self._dec_chunked
        else:
            self.key = _single_key
            self.apply_part = proj.apply
            self.new_part = lambda _key: proj.initial()
            self._enc, self._dec = proj.encode, proj.decode

    # -- loading and reading -------------------------------------------------
    def load(self, stored: dict[str, tuple[bytes, bytes]]) -> None:
        """Take the stored parts; each is decoded when a fold first touches
        it (or the state is read), so catching up a large read model over a
        few new events decodes the few parts they touch, not all of them."""
        self.parts = {}
        self.lazy = {k: data for k, (_d, data) in stored.items()}
        self.encoded = dict(stored)
        self.unsnapped = set(stored)  # their blobs may predate the last snapshot: re-offer them
        self.since_full = set(stored)  # which changed since the last full snapshot is not known: compare all
        self.full = None  # the runner sets it from the stored full snapshot, if there is one

    def decode(self, data: bytes) -> Any:
        return self._dec(data)

    def _dec_chunked(self, data: bytes) -> Any:
        return chunks.decode(data, self._dec_part, self.proj, self.fetch)

    def borrow(self, key: str, part: Any, data: bytes) -> None:
        """Use a shared, read-only decoded part; the first fold that touches
        it replaces it with a private copy decoded from ``data``."""
        self.parts[key] = part
        self.shared[key] = data

    def _data(self, data: Any) -> bytes:
        """A lazy part's encoding: its bytes, or read now for one known by digest
        only (time travel leaves a snapshot's parts unread until needed)."""
        return data if data.__class__ is bytes else read(self.fetch, data)

    def state(self) -> Any:
        if self.unread:
            self._read_unread()
        if self.lazy:
            dec, parts = self._dec, self.parts
            unread = [d for d in self.lazy.values() if d.__class__ is Encoded]
            if unread:
                fetch_all(self.fetch, unread)
            for k, data in self.lazy.items():
                parts[k] = dec(self._data(data))
            self.lazy = {}
        if isinstance(self.proj, PartitionedProjection):
            return self.parts
        part = self.parts.get(SINGLE)
        return self.proj.initial() if part is None else part

    def _read_unread(self) -> None:
        """Move the parts still known by digest only into ``lazy`` (read in one go)."""
        parts, lazy = self.parts, self.lazy
        pending = {k: Encoded(d) for k, d in self.unread.items() if k not in parts and k not in lazy}
        fetch_all(self.fetch, list(pending.values()))
        lazy.update(pending)
        self.unread = _NONE

    # -- folding ------------------------------------------------------------
    def fold(self, position: int, event: Any) -> None:
        k = self.key(event)
        if k is None:
            return
        parts = self.parts
        if self.lazy:
            for kk in (k,) if k.__class__ is str else k:
                data = self.lazy.pop(kk, None)
                if data is not None:
                    parts[kk] = self._dec(self._data(data))
        if self.unread:
            for kk in (k,) if k.__class__ is str else k:
                if kk not in parts:
                    d = self.unread.get(kk)
                    if d is not None:
                        parts[kk] = self._dec(read(self.fetch, Encoded(d)))
        if self.shared:
            for kk in (k,) if k.__class__ is str else k:
                data = self.shared.pop(kk, None)
                if data is not None:
                    parts[kk] = self._dec(data)  # copy on write: never mutate a borrowed part
        if k.__class__ is str:
            part = parts.get(k)
            parts[k] = self.apply_part(self.new_part(k) if part is None else part, position, event)
            self.touched.add(k)
            return
        for kk in k:  # an event touching several parts
            part = parts.get(kk)
            parts[kk] = self.apply_part(self.new_part(kk) if part is None else part, position, event)
            self.touched.add(kk)

    # -- persisting ---------------------------------------------------------
    def _encode_touched(self) -> None:
        enc, encoded, parts = self._enc, self.encoded, self.parts
        for k in self.touched:
            data = enc(parts[k])
            encoded[k] = (digest(data), data)
        self.unsaved |= self.touched
        self.unsnapped |= self.touched
        self.touched = set()

    def snapshot(self, position: int, *, full: bool = True) -> None:
        """A full snapshot (every part's digest), or a delta: the parts whose
        digest differs from the last full snapshot's (projections/manifests.py).
        Either way the same bytes however the state was reached (from zero,
        or resumed from a committed position), so a resumed rebuild writes the
        snapshots an uninterrupted one does."""
        self._encode_touched()
        blobs: dict[bytes, bytes] = {}
        stored = self._stored
        for k in self.unsnapped:
            d, data = stored(k, blobs)
            blobs[d] = data
        self.since_full |= self.unsnapped
        self.unsnapped = set()
        if full:
            manifest = {k: stored(k, blobs)[0] for k in self._keys()}
            self.full, self.since_full = (position, manifest), set()
            self.snaps.append(SnapshotWrite(position=position, manifest=manifest, blobs=blobs))
            return
        if self.full is None:  # resumed where no full snapshot to diff against is known: none until the next
            return
        base, before = self.full
        delta = {}
        for k in sorted(self.since_full):
            d = stored(k, blobs)[0]
            if before.get(k) != d:
                delta[k] = d
        self.snaps.append(SnapshotWrite(position=position, manifest=delta, blobs=blobs, base=base))

    def _keys(self) -> list[str]:
        """Every part's key, sorted (a full manifest: the same bytes however the state was reached)."""
        return sorted(self.encoded)

    def _stored(self, k: str, blobs: dict[bytes, bytes]) -> tuple[bytes, bytes]:
        """``(digest, data)`` of part ``k`` as a snapshot stores it, adding to
        ``blobs`` any other blob it needs (chunks: projections/chunkedlive.py)."""
        return self.encoded[k]

    def write(self, position: int, hash_: bytes, *, finished: bool) -> ProjectionWrite:
        self._encode_touched()
        w = ProjectionWrite(
            name=self.name,
            version=self.version,
            expected_position=self.committed,
            position=position,
            hash=hash_,
            rebuilding=self.rebuilding and not finished,
            parts={k: self.encoded[k] for k in self.unsaved},
            part_count=len(self.parts.keys() | self.lazy.keys() | self.unread.keys()),
            snapshots=tuple(self.snaps),
        )
        return w

    def committed_to(self, position: int, *, finished: bool) -> None:
        self.unsaved = set()
        self.snaps = []
        self.committed = self.start = position
        if finished:
            self.rebuilding = False


_NONE: Mapping[str, bytes] = MappingProxyType({})
_DECODERS: dict[Any, Callable[[bytes], Any]] = {}


def _decoder(part_type: Any) -> Callable[[bytes], Any]:
    """One msgpack decoder per part type, shared by every ``Live`` (making a
    typed decoder costs more than decoding a small part; decoding is reentrant)."""
    dec = _DECODERS.get(part_type)
    if dec is None:
        dec = _DECODERS[part_type] = msgspec.msgpack.Decoder(part_type).decode
    return dec


def _single_key(_event: Any) -> str:
    return SINGLE


def _nothing(_digests: list[bytes]) -> dict[bytes, bytes]:
    return {}
