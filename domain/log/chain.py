"""The hash chain that makes the event log tamper-evident.

Every stored event carries ``hash = SHA-256(previous hash || position ||
stream || version || topic || payload)``. Changing, removing or reordering
any event changes every hash after it, so one recomputation from the
genesis value proves the whole log (or an export of it) intact.

The byte layout is fixed and documented here because auditors recompute it
with their own tools:

* previous hash: 32 raw bytes (``GENESIS`` for position 1);
* position and version: 8-byte unsigned big-endian integers;
* stream, topic and payload: a 4-byte unsigned big-endian length, then the
  bytes (UTF-8 for stream and topic).

Length prefixes make the concatenation unambiguous: no two different
events can produce the same preimage.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable

from uok.domain.errors import IntegrityFailure

GENESIS: bytes = hashlib.sha256(b"uok event log genesis v1").digest()
"""The "previous hash" of the first event: SHA-256 of ``b"uok event log genesis v1"``."""

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def preimage(prev: bytes, position: int, stream: str, version: int, topic: str, payload: bytes) -> bytes:
    s = stream.encode()
    t = topic.encode()
    return b"".join(
        (
            prev,
            _U64.pack(position),
            _U32.pack(len(s)),
            s,
            _U64.pack(version),
            _U32.pack(len(t)),
            t,
            _U32.pack(len(payload)),
            payload,
        )
    )


class LengthPrefixed(dict[str, bytes]):
    """Stream or topic name -> its ``u32 length || UTF-8`` as :func:`preimage`
    lays it out, made on first use: names repeat row after row, so the
    hot loops that hash many rows (the store's append, the catch-up's
    verified read, the verified scan) look each one up instead of encoding
    it again. At most ``MAX`` names are kept (a long log has one stream per
    unit): past that it starts afresh."""

    MAX = 4096

    def __missing__(self, name: str) -> bytes:
        if len(self) >= self.MAX:
            self.clear()
        b = name.encode()
        v = self[name] = _U32.pack(len(b)) + b
        return v


def link(prev: bytes, position: int, stream: str, version: int, topic: str, payload: bytes) -> bytes:
    """The hash of one event given the hash of the event before it."""
    return hashlib.sha256(preimage(prev, position, stream, version, topic, payload)).digest()


class ChainBroken(IntegrityFailure):
    """The recomputed chain disagrees with a stored hash, or positions are not contiguous."""

    def __init__(self, position: int, reason: str):
        super().__init__(f"hash chain broken at position {position}: {reason}")
        self.position = position
        self.reason = reason


def verify(
    rows: Iterable[tuple[int, str, int, str, bytes, bytes]], start_prev: bytes = GENESIS, start_position: int = 1
) -> tuple[int, bytes]:
    """Recompute the chain over ``rows`` of (position, stream, version, topic, payload, hash).

    Returns ``(count, head_hash)``; raises :class:`ChainBroken` at the first
    position whose hash does not match or that is not the next position.
    """
    prev = start_prev
    expected = start_position
    count = 0
    for position, stream, version, topic, payload, stored in rows:
        if position != expected:
            raise ChainBroken(expected, f"expected position {expected}, found {position} (gap or reorder)")
        try:
            h = link(prev, position, stream, version, topic, bytes(payload))
            intact = h == bytes(stored)
        except (TypeError, AttributeError, struct.error):  # edited with other tools: payload as TEXT, ...
            raise ChainBroken(
                position,
                f"the row does not have the types uok wrote (payload {type(payload).__name__}, "
                f"hash {type(stored).__name__}): edited with other tools?",
            ) from None
        if not intact:
            raise ChainBroken(position, "stored hash does not match the recomputed hash")
        prev = h
        expected += 1
        count += 1
    return count, prev
