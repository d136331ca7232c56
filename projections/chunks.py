"""A large part stored in snapshots as chunks, so a snapshot rewrites only
the chunks that changed.

Why: a ``units`` part is a whole plan's units. Every snapshot that offers
a part stores its encoding, so a run of a long plan rewrote the plan's
whole part at every delta snapshot: a 2,000-task chain with a delta every
100 events made a 54.5 MB file, 44 MB of it units blobs, and the cost grew
with the plan's size times the run's length (docs/performance.md, "Time
travel in one process"). Stored as chunks, a snapshot of such a part
writes the chunks whose units changed (a run moves a few units at a time)
and a small index naming every chunk, so ``units`` can take a delta every
100 events like the per-run read models.

How: a projection that opts in (``PartitionedProjection.chunk``, with
``entries``, ``of_entries`` and ``entry``) has each part of more than
``chunk_over`` entries stored in snapshots as

* **chunks**: parts of ``chunk`` entries each, in the part's own order
  (entries are only ever added at the end, so an entry stays in its chunk
  and an unchanged chunk keeps its digest), each a blob shared by digest
  like any part's encoding. The runner knows which entries each event
  changed (``entry``), so it re-encodes only the chunks holding them
  (projections/chunkedlive.py);
* **an index**, the msgpack array ``[1, [digest, ...]]``, which the
  snapshot's manifest names in place of the part's encoding.

A part of at most ``chunk_over`` entries is stored as it always was (its
encoding, a msgpack map), and so is every part in the current state
(``projection_parts``): only snapshots hold indexes. A decoder tells the
two apart by the first byte (an array, not a map) and reads an index's
chunks from the snapshot blobs. The layout is the read model's version's:
snapshots of an older version are never read (they are another version's
rows: the read model is refolded from zero), so nothing older is misread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from uok.projections.lazyparts import Fetch, PartsGone

INDEX = 1  # the format tag of an index: [INDEX, [chunk digest, ...]]
_ARRAY_OF_TWO = 0x92  # msgpack fixarray of 2: an index; a part's own encoding is a map
_INDEX = msgspec.msgpack.Decoder(tuple[int, list[bytes]])
_encode = msgspec.msgpack.Encoder().encode


def is_index(data: bytes) -> bool:
    return bool(data) and data[0] == _ARRAY_OF_TWO


def encode_index(digests: list[bytes]) -> bytes:
    return _encode((INDEX, digests))


def chunk_digests(data: bytes) -> list[bytes]:
    fmt, digests = _INDEX.decode(data)
    if fmt != INDEX:
        raise ValueError(f"unknown chunked part format {fmt}")
    return digests


def decode(data: bytes, dec: Callable[[bytes], Any], proj: Any, fetch: Fetch) -> Any:
    """The part an index (or a part's own encoding) stands for: its chunks
    read (``fetch``), decoded and joined (``proj``: the projection)."""
    if not is_index(data):
        return dec(data)
    digests = chunk_digests(data)
    got = fetch(digests)
    entries: dict[str, Any] = {}
    for d in digests:
        raw = got.get(d)
        if raw is None:
            raise PartsGone("the read models were rebuilt while this query read them: run it again")
        entries.update(proj.entries(dec(raw)))
    return proj.of_entries(entries)
