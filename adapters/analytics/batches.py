"""Pages of the event log as Arrow batches, with what DuckDB needs to check
each row's hash.

A batch holds the six stored columns (position, stream, version, topic,
payload, hash) plus the pieces of each row's chain preimage
(:mod:`uok.domain.log.chain`) that are not stored as such: the previous
row's stored hash and the big-endian position, version and lengths. The
loader has DuckDB compute ``sha256(prev || position_be || ...)`` for every
row in its own threads and compare it with the stored hash, unless the C
check (:data:`FIRST_BROKEN`, ``_chain.c``) was built: each batch also keeps
the page's joined buffers (``Batch.chain``), which it hashes a page per call.

Checking each row against the *stored* hash of the row before it is the
chain check: if every link holds, the chain from genesis holds, and the
first failing row is the first altered one.

Two ways in, one batch layout:

* :func:`packed_to_batch`, a SQLite page packed by SQLite itself
  (:meth:`uok.adapters.analytics.sources.ApswRows.packed`): each column of
  the page is one joined buffer, the integers are big-endian hex; no
  Python object per row is made (the row-by-row read and its Arrow build
  were ~1.7 of the load's CPU-seconds per million events);
* :func:`rows_to_batch`, a page of row tuples (any store, and a SQLite page
  the packed read refuses: a row of unexpected types).

Buffers are wrapped as Arrow arrays by nanoarrow (a 1 MB library: the Arrow
C data interface without pyarrow), never converted value by value.
"""

from __future__ import annotations

import array
import itertools
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import cast

import nanoarrow as na
from uok.domain.log.chain import ChainBroken

SCHEMA = na.struct(
    {
        "position": na.int64(),
        "stream": na.string(),
        "version": na.int64(),
        "topic": na.string(),
        "payload": na.string(),
        "hash": na.fixed_size_binary(32),
        "prev": na.fixed_size_binary(32),
        "position_be": na.fixed_size_binary(8),
        "stream_len": na.fixed_size_binary(4),
        "version_be": na.fixed_size_binary(8),
        "topic_len": na.fixed_size_binary(4),
        "payload_len": na.fixed_size_binary(4),
    }
)
C_SCHEMA = na.c_schema(SCHEMA)
_STRING, _INT64 = na.string(), na.int64()
_LITTLE = sys.byteorder == "little"


def _native() -> ModuleType | None:
    """The C extension (``_chain``), or None when it was not built (no C
    compiler or libcrypto at install time) or ``UOK_ANALYTICS_NATIVE=0``
    switches it off (tests, benchmarks)."""
    if os.environ.get("UOK_ANALYTICS_NATIVE", "1") == "0":
        return None
    try:
        from uok.adapters.analytics import _chain
    except ImportError:
        return None
    return _chain


_C = _native()
FIRST_BROKEN: Callable[..., int] | None = _C.first_broken if _C else None
"""``first_broken(prev, first, versions_be, stream_len_be, topic_len_be,
payload_len_be, streams, topics, payloads, hashes)``: the index of the first
row of a page whose recomputed hash differs from its stored one, or -1
(see ``_chain.c``); None: DuckDB and ``hashlib`` check instead."""
SPLIT_PAGE: Callable[..., tuple[bytes, ...] | None] | None = _C.split_page if _C else None
"""``split_page(n, versions, streams, topics, payloads)``: a page packed
with separators (:data:`uok.adapters.analytics.sources.PACKED_SPLIT`) as
the buffers a batch needs (:func:`split_to_batch`); None: pages are packed
with hex lengths (:func:`packed_to_batch`)."""
OFFSETS: Callable[[bytes, int], tuple[bytes, ...]] | None = _C.offsets if _C else None
"""``offsets(lengths_be, 3)``: a packed page's interleaved big-endian
lengths as three columns of Arrow offsets, in C (``itertools.accumulate``
in Python costs ~0.19 CPU-s per million events); None: in Python."""


class Batch:
    """One page of rows as an Arrow struct array, with what the main thread
    needs to know about it without reading the array back, and the page's
    buffers for the C check (``chain``: :data:`FIRST_BROKEN`'s arguments)."""

    __slots__ = ("array", "chain", "first", "last", "last_hash", "rows", "verified")

    def __init__(self, array: na.CArray, rows: int, first: int, last: int, last_hash: bytes, chain: tuple = ()):
        self.array, self.rows, self.first, self.last, self.last_hash = array, rows, first, last, last_hash
        self.chain = chain
        self.verified = False  # every row's hash already checked


def check_natively(batch: Batch) -> bool:
    """Check every row of ``batch`` in C (GIL released) if the C check is
    there; False if it is not (DuckDB or ``hashlib`` must check it)."""
    if FIRST_BROKEN is None or not batch.chain:
        return False
    broken = FIRST_BROKEN(*batch.chain)
    if broken >= 0:
        raise ChainBroken(
            batch.first + broken, "stored hash does not match the recomputed hash (the log was altered or damaged)"
        )
    batch.verified = True
    return True


def _fixed(size: int, n: int, data: bytes | array.array) -> na.CArray:
    return na.c_array_from_buffers(na.fixed_size_binary(size), n, [None, data])


def _swapped(a: array.array) -> array.array:
    """A copy of ``a`` with every item's bytes reversed on a little-endian
    machine (native <-> big-endian); ``a`` itself on a big-endian one."""
    if not _LITTLE:
        return a
    b = array.array(a.typecode, a)
    b.byteswap()
    return b


def _offsets(lengths: array.array) -> array.array:
    return array.array("i", itertools.accumulate(lengths, initial=0))


def _checked_utf8(data: bytes) -> None:
    """Raise UnicodeDecodeError unless ``data`` is UTF-8 (as an Arrow string
    column must be); ASCII, the usual case, is recognised without decoding."""
    if not data.isascii():
        data.decode("utf-8")


def _struct(n: int, children: list[na.CArray]) -> na.CArray:
    return na.c_array_from_buffers(SCHEMA, n, [None], children=children)


def packed_to_batch(page: tuple, prev: bytes) -> Batch | None:
    """A page packed by SQLite (see :data:`uok.adapters.analytics.sources.PACKED`):
    ``(count, first, versions hex, lengths hex, streams, topics, payloads,
    hashes)``; the caller has checked that it holds positions ``first ..
    first + count - 1`` with the types uok writes. ``None`` if a column is
    not UTF-8 (a damaged row): the row-by-row path then loads it mangled
    and its hash check names it.

    The order of the rows inside each joined buffer is the order SQLite
    visited them; each row's position (and previous hash) is taken from
    that order, so a row visited out of position order would fail its hash
    check, never pass it.
    """
    n, first, versions_hex, lengths_hex, streams, topics, payloads, hashes = page
    try:
        for column in (streams, topics, payloads):
            _checked_utf8(column)
    except UnicodeDecodeError:
        return None
    versions_be = array.array("q", bytes.fromhex(versions_hex))
    lengths = bytes.fromhex(lengths_hex)  # stream, topic, payload lengths, big-endian, interleaved
    lengths_be = array.array("i", lengths)
    stream_len, topic_len, payload_len = lengths_be[0::3], lengths_be[1::3], lengths_be[2::3]
    offsets: tuple[bytes | array.array, ...] = (
        OFFSETS(lengths, 3)
        if OFFSETS is not None
        else tuple(_offsets(_swapped(c)) for c in (stream_len, topic_len, payload_len))
    )
    stream_off, topic_off, payload_off = offsets
    return _batch(
        n,
        first,
        prev,
        hashes,
        _swapped(versions_be),
        versions_be,
        (streams, stream_off, stream_len),
        (topics, topic_off, topic_len),
        (payloads, payload_off, payload_len),
    )


def split_to_batch(page: tuple, prev: bytes) -> Batch | None:
    """A page packed by SQLite with separators (see
    :data:`uok.adapters.analytics.sources.PACKED_SPLIT`): ``(count, first,
    versions, streams, topics, payloads, hashes)``, split in C
    (:data:`SPLIT_PAGE`); the caller has checked the positions and types as
    for :func:`packed_to_batch`. ``None`` if a column is not UTF-8 or does
    not hold one value per row (a value holding the separator byte): the
    row-by-row path then reads the page."""
    n, first, versions, streams, topics, payloads, hashes = page
    try:
        for column in (streams, topics, payloads):
            _checked_utf8(column)
    except UnicodeDecodeError:
        return None
    assert SPLIT_PAGE is not None
    parts = SPLIT_PAGE(n, versions.encode(), streams, topics, payloads)
    if parts is None:
        return None
    versions_native, versions_be, streams, stream_off, stream_len, topics, topic_off, topic_len = parts[:8]
    payloads, payload_off, payload_len = parts[8:]
    return _batch(
        n,
        first,
        prev,
        hashes,
        versions_native,
        versions_be,
        (streams, stream_off, stream_len),
        (topics, topic_off, topic_len),
        (payloads, payload_off, payload_len),
    )


def _batch(
    n: int,
    first: int,
    prev: bytes,
    hashes: bytes,
    versions_native: bytes | array.array,
    versions_be: bytes | array.array,
    streams: tuple,
    topics: tuple,
    payloads: tuple,
) -> Batch:
    """The Arrow struct of a page and its chain-check arguments, from its
    columns' buffers: each of ``streams``, ``topics`` and ``payloads`` is
    ``(joined bytes, Arrow offsets, big-endian u32 lengths)``; versions both
    native (the ``version`` column) and big-endian (the preimage)."""
    (sb, s_off, s_len), (tb, t_off, t_len), (pb, p_off, p_len) = streams, topics, payloads
    positions = array.array("q", range(first, first + n))
    children = [
        na.c_array_from_buffers(_INT64, n, [None, positions]),
        na.c_array_from_buffers(_STRING, n, [None, s_off, sb]),
        na.c_array_from_buffers(_INT64, n, [None, versions_native]),
        na.c_array_from_buffers(_STRING, n, [None, t_off, tb]),
        na.c_array_from_buffers(_STRING, n, [None, p_off, pb]),
        _fixed(32, n, hashes),
        _fixed(32, n, prev + hashes[: 32 * (n - 1)]),
        _fixed(8, n, _swapped(positions)),
        _fixed(4, n, s_len),
        _fixed(8, n, versions_be),
        _fixed(4, n, t_len),
        _fixed(4, n, p_len),
    ]
    chain = (prev, first, versions_be, s_len, t_len, p_len, sb, tb, pb, hashes)
    return Batch(_struct(n, children), n, first, first + n - 1, hashes[-32:], chain)


def _string_array(values: tuple[bytes, ...]) -> tuple[na.CArray, array.array, bytes]:
    """UTF-8 bytes -> (Arrow string array, byte lengths) via one joined
    buffer and offsets. Bytes that are not UTF-8 (a damaged row) are loaded
    mangled; the row's hash check then fails, naming it."""
    data = b"".join(values)
    try:
        _checked_utf8(data)
    except UnicodeDecodeError:
        values = tuple(bytes(v).decode("utf-8", "replace").encode("utf-8") for v in values)
        data = b"".join(values)
    lengths = array.array("i", map(len, values))
    return na.c_array_from_buffers(_STRING, len(values), [None, _offsets(lengths), data]), lengths, data


def _utf8(values: tuple[bytes | str, ...]) -> tuple[bytes, ...]:
    """Streams and topics as UTF-8 bytes: SQLite hands them over as bytes
    already (``CAST(... AS BLOB)`` in :mod:`.sources`), another store as str."""
    if values and isinstance(values[0], str):
        return tuple(v.encode("utf-8") if isinstance(v, str) else v for v in values)
    return cast(tuple[bytes, ...], values)


def rows_to_batch(rows: list[tuple], prev: bytes, expected: int) -> Batch:
    """One page of ``(position, stream, version, topic, payload, hash)``
    rows as a batch; the big-endian integers are converted in C by the
    ``array`` module. Streams and topics come as their UTF-8 bytes
    (``CAST(... AS BLOB)`` on SQLite), so their byte lengths come from
    ``len`` in C."""
    pos, stream, ver, topic, payload, hashes = zip(*rows, strict=False)
    n = len(rows)
    if pos[0] != expected or pos[-1] != expected + n - 1:
        at, found = next((expected + i, p) for i, p in enumerate(pos) if p != expected + i)
        raise ChainBroken(at, f"expected position {at}, found {found} (gap or reorder)")
    if set(map(len, hashes)) != {32}:
        for i, h in enumerate(hashes):
            if len(h) != 32:
                raise ChainBroken(pos[i], f"stored hash is {len(h)} bytes, not 32")
    joined = b"".join(hashes)
    stream_arr, stream_len, streams = _string_array(_utf8(stream))
    topic_arr, topic_len, topics = _string_array(_utf8(topic))
    payload_arr, payload_len, payloads = _string_array(payload)
    positions, versions = array.array("q", pos), array.array("q", ver)
    versions_be, stream_be, topic_be, payload_be = map(_swapped, (versions, stream_len, topic_len, payload_len))
    children = [
        na.c_array_from_buffers(_INT64, n, [None, positions]),
        stream_arr,
        na.c_array_from_buffers(_INT64, n, [None, versions]),
        topic_arr,
        payload_arr,
        _fixed(32, n, joined),
        _fixed(32, n, prev + joined[: 32 * (n - 1)]),
        _fixed(8, n, _swapped(positions)),
        _fixed(4, n, stream_be),
        _fixed(8, n, versions_be),
        _fixed(4, n, topic_be),
        _fixed(4, n, payload_be),
    ]
    chain = (prev, pos[0], versions_be, stream_be, topic_be, payload_be, streams, topics, payloads, joined)
    return Batch(_struct(n, children), n, pos[0], pos[-1], bytes(hashes[-1]), chain)
