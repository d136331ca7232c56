"""Fork: a new log that shares a run's history up to position P.

Events 1..P are copied record by record (stream, version, topic and
payload bytes unchanged) and appended in order to an empty log. The chain
hash of each event depends only on the previous hash and the event's own
bytes, so the copy has the very same positions and hashes; this is checked,
not assumed: the copy's head hash must equal the parent's hash at P. Then
one ``RunForked`` event records where the history came from and detaches
the runs that were open at P (see :mod:`uok.domain.kernel.rules.forking`). ``uok run PLAN
--db FORK`` then continues from that history: its kernel recovers the
detached runs and carries on, and everything it writes lands after P+1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from uok.adapters.log_copy import CopyMismatch, copy_log
from uok.domain.errors import InputError, IntegrityFailure
from uok.domain.events import Event, ForkOrigin, KernelEntered, KernelExited, RunForked, RunRecovered
from uok.domain.log import codec
from uok.domain.log.store import NewRecord
from uok.replay.replayer import entered_position


class ForkError(InputError, ValueError):
    """A fork that cannot be made as asked (bad position, unknown run, non-empty target)."""


class ForkIntegrityError(IntegrityFailure, RuntimeError):
    """The copy's hashes differ from the parent's: the parent log is not intact."""


class ForkResult(msgspec.Struct, frozen=True, kw_only=True):
    position: int  # last copied position (P)
    head_hash: str  # hex, identical in parent and fork
    forked_position: int  # position of the RunForked event in the fork (P + 1)
    open_runs: tuple[str, ...]


def _topics(*classes: type[Event]) -> list[str]:
    return [f"{c.__name__}/v{v}" for c in classes for v in range(c.VERSION + 1)]


def open_runs_at(parent: Any, position: int) -> tuple[str, ...]:
    """Runs entered at or before ``position`` with no exit or recovery by then."""
    open_: dict[str, None] = {}
    for r in parent.read(0, upto=position, topics=_topics(KernelEntered, KernelExited, RunRecovered)):
        e = codec.decode(r.topic, r.payload)
        if isinstance(e, KernelEntered):
            open_[e.run_id] = None
        elif isinstance(e, KernelExited):
            open_.pop(e.run_id, None)
        elif isinstance(e, RunRecovered):
            open_.pop(e.recovered_run, None)
    return tuple(open_)


def fork_log(parent: Any, child: Any, *, run_id: str, position: int, parent_path: str, now: datetime) -> ForkResult:
    """Copy ``parent`` 1..``position`` into the empty ``child`` and append ``RunForked``.

    ``parent`` and ``child`` are event stores (:class:`uok.domain.log.store.EventStorePort`);
    ``now`` is the shell's clock reading for the ``RunForked`` event."""
    head, _ = parent.head()
    if position < 1 or position > head:
        raise ForkError(f"--at {position} is outside the parent log (positions 1..{head})")
    entered = entered_position(parent, run_id)  # RunNotFound if the run never entered
    if entered > position:
        raise ForkError(f"run {run_id} entered at position {entered}, after --at {position}")
    if child.head()[0] != 0:
        raise ForkError("the fork target already holds events")
    try:
        parent_hash = bytes.fromhex(copy_log(parent, child, upto=position).head_hash)
    except CopyMismatch as e:
        raise ForkIntegrityError(str(e)) from None
    opened = open_runs_at(parent, position)
    origin = ForkOrigin(db_path=parent_path, run_id=run_id, position=position, head_hash=parent_hash.hex())
    marker = RunForked(at=now, forked_from=origin, open_runs=opened)
    topic, payload = codec.encode(marker)
    stream = marker.stream()
    [forked_at] = child.append(
        [NewRecord(stream=stream, version=child.stream_version(stream) + 1, topic=topic, payload=payload)]
    )
    return ForkResult(position=position, head_hash=parent_hash.hex(), forked_position=forked_at, open_runs=opened)
