"""Copying an event log into another store, positions and hashes preserved.

Events are read in position order and appended in batches (stream,
version, topic and payload bytes unchanged) to a destination that holds
nothing, or holds exactly a prefix of the source (an interrupted copy is
continued, not restarted). The chain hash of each event depends only on the
previous hash and the event's own bytes, so the destination computes the
very same positions and hashes; this is checked, not assumed, after every
batch: the destination's head must equal the source's hash at that
position. Works between any two stores (SQLite -> PostgreSQL, back, or
same kind): see ``uok copy``.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from uok.domain.errors import InputError, IntegrityFailure
from uok.domain.log.chain import GENESIS
from uok.domain.log.store import NewRecord

BATCH = 5000


class CopyRefused(InputError, ValueError):
    """The destination holds events that are not a prefix of the source (exit 2)."""


class CopyMismatch(IntegrityFailure, RuntimeError):
    """The destination's hashes differ from the source's: the source chain does not verify (exit 3)."""


class CopyResult(msgspec.Struct, frozen=True, kw_only=True):
    copied: int  # events appended by this copy
    resumed_from: int  # events the destination already held (a prefix of the source)
    position: int  # the destination's head position after the copy
    head_hash: str  # hex, identical in source and destination


def copy_log(
    source,
    destination,
    *,
    upto: int | None = None,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> CopyResult:
    """Append ``source``'s events ``1..upto`` (default: its head) to
    ``destination``; both are event stores. ``progress(done, total)`` is
    called after each batch."""
    src_head = source.head()[0]
    upto = src_head if upto is None else upto
    dst_head, dst_hash = destination.head()
    if dst_head > upto:
        raise CopyRefused(f"the destination already holds {dst_head} events, more than the {upto} to copy")
    if dst_head and source.hash_at(dst_head) != dst_hash:
        raise CopyRefused(
            f"the destination holds {dst_head} events that are not the source's first {dst_head} "
            "(different hash at its head); copy into an empty log"
        )
    last_hash = dst_hash if dst_head else GENESIS
    pending: list[NewRecord] = []
    position = dst_head
    for r in source.read(dst_head, upto=upto):
        pending.append(NewRecord(stream=r.stream, version=r.version, topic=r.topic, payload=bytes(r.payload)))
        position, last_hash = r.position, bytes(r.hash)
        if len(pending) >= batch:
            _append(destination, pending, position, last_hash)
            pending = []
            if progress is not None:
                progress(position, upto)
    if pending:
        _append(destination, pending, position, last_hash)
        if progress is not None:
            progress(position, upto)
    if position != upto:
        raise CopyMismatch(f"the source ended at position {position}, before {upto}")
    return CopyResult(copied=position - dst_head, resumed_from=dst_head, position=position, head_hash=last_hash.hex())


def _append(destination, records: list[NewRecord], last_position: int, last_hash: bytes) -> None:
    positions = destination.append(records)
    pos, h = destination.head()
    if positions[-1] != last_position or pos != last_position or h != last_hash:
        raise CopyMismatch(
            f"copied history differs from the source at or before position {last_position}: "
            "the source's hash chain does not verify (run `uok verify` on it)"
        )
