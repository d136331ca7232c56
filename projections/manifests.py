"""Snapshot manifests, in two formats, and how a stored one is read.

A snapshot's manifest maps each part key of a read model to the digest of
the part's encoding at that position (the encodings themselves are blobs,
shared by digest). Two formats are stored in ``projection_snapshots``:

* **format 1, full**: the msgpack map ``key -> digest`` of every part.
  Written at every multiple of the snapshot interval (10,000 events by
  default), as before this module existed;
* **format 2, delta**: the msgpack array ``[2, base, {key: digest}]``
  holding only the parts whose digest differs from the *full* manifest
  at position ``base`` (the last multiple of the interval before it; 0,
  with no full snapshot yet, means "every part is new"). Written at every
  multiple of the delta interval (by default a tenth of the snapshot
  interval) that is not a full snapshot.

Why: the state at a position folds forward from the nearest snapshot, so
the window to fold (and hash-check) is up to one snapshot interval. A
full manifest lists every part (on a long log, ~1,500 plans, ~1,500 runs),
so denser full snapshots would cost that much per snapshot; a delta costs
in proportion to what changed since the last full one, so snapshots can
be ten times denser for a few kilobytes each, and a query folds at most a
tenth of the events it used to.

A delta is resolved as ``{**full(base), **delta}``. Parts are never
removed from a read model (a fold only adds or changes parts), so that is
the manifest of the state at the delta's position; the property test
(tests/integration/test_projections.py) checks "snapshot + fold == fold
from zero" with deltas at random intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import msgspec

FULL, DELTA = 1, 2

Manifest = dict[str, bytes]
_DECODER = msgspec.msgpack.Decoder(dict[str, bytes] | tuple[int, int, dict[str, bytes]])
_FULL = msgspec.msgpack.Decoder(dict[str, bytes])


def _is_map(raw: bytes) -> bool:
    """A full manifest is a msgpack map (fixmap, map 16, map 32); a delta an array."""
    return bool(raw) and (0x80 <= raw[0] <= 0x8F or raw[0] in (0xDE, 0xDF))


class Resolved(Mapping[str, bytes]):
    """A delta resolved against its full manifest, ``{**full, **delta}``, the
    full one decoded only when a key the delta lacks is looked up or the whole
    is iterated: a question about one run looks up its few parts, which a
    delta taken while the run goes on holds (on a long log a full manifest
    lists every plan and run, and decoding it was most of reading one)."""

    __slots__ = ("_delta", "_full", "_merged", "_raw")

    def __init__(self, delta: dict[str, bytes], full_raw: bytes):
        self._delta, self._raw = delta, full_raw
        self._full: dict[str, bytes] | None = None
        self._merged: dict[str, bytes] | None = None

    def _whole(self) -> dict[str, bytes]:
        if self._merged is None:
            self._merged = {**self._full_dict(), **self._delta}
        return self._merged

    def _full_dict(self) -> dict[str, bytes]:
        if self._full is None:
            self._full = _FULL.decode(self._raw)
        return self._full

    def __getitem__(self, key: str) -> bytes:
        d = self._delta.get(key)
        return d if d is not None else self._full_dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._delta or key in self._full_dict()

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def __repr__(self) -> str:
        return f"Resolved({len(self._delta)} changed)"


def encode(manifest: Manifest, base: int | None) -> bytes:
    """A full manifest (``base`` None) or a delta against the full one at ``base``."""
    return msgspec.msgpack.encode(manifest if base is None else (DELTA, base, manifest))


def is_full(raw: bytes) -> bool:
    return _is_map(raw)


def full(raw: bytes) -> Manifest:
    """A stored full manifest, decoded."""
    return _FULL.decode(raw)


def delta_base(raw: bytes) -> int:
    """The position of the full manifest a stored delta is taken against (0:
    none, or ``raw`` is a full manifest itself, not decoded)."""
    if _is_map(raw):
        return 0
    m = _DECODER.decode(raw)
    return 0 if isinstance(m, dict) else m[1]


def resolve(raw: bytes, fetch: Callable[[int], bytes | None]) -> Mapping[str, bytes] | None:
    """The whole manifest a stored one stands for (a delta's: a :class:`Resolved`,
    its full base decoded when needed). ``fetch(position)``: the stored
    manifest at exactly that position (None if there is none). None when a
    delta's full base is missing or is not full (a rebuild under way replaced
    it): the caller then treats the snapshot as absent."""
    m = _DECODER.decode(raw)
    if isinstance(m, dict):
        return m
    fmt, base, delta = m
    if fmt != DELTA:
        raise ValueError(f"unknown snapshot manifest format {fmt}")
    if base == 0:
        return delta
    full_raw = fetch(base)
    if full_raw is None or not _is_map(full_raw):
        return None
    return Resolved(delta, full_raw)


def delta_interval(snapshot_every: int) -> int:
    """The default delta interval: a tenth of a snapshot interval of at least
    1,000 events that 10 divides (so 1,000 for the default 10,000); 0 (no
    deltas) for shorter or other intervals."""
    if snapshot_every >= 1000 and snapshot_every % 10 == 0:
        return snapshot_every // 10
    return 0
