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


_PAGE = 1000


def _observed(topic: str) -> bool:
    """Whether a topic is an observation (it opens a transaction); unknown topics count as one."""
    from uok.domain import events as ev

    cls = getattr(ev, topic.split("/", 1)[0], None)
    return bool(getattr(cls, "OBSERVED", True))


def transaction_around(parent: Any, position: int, head: int) -> tuple[int, int] | None:
    """``(first, last)`` of the transaction that ``position`` cuts in two, or
    None at a boundary. The shell appends an observation and its decisions
    in one transaction, so a cut is inside one exactly when the event after
    it is a decision: a fork there would hold an observation without all of
    its decisions, and its replay would report a divergence that never was."""
    if position >= head:
        return None
    nxt = next(iter(parent.read(position, upto=position + 1)), None)
    if nxt is None or _observed(nxt.topic):
        return None
    first = position
    while first > 0:  # back to the observation that opened it
        lo = max(0, first - _PAGE)
        rows = list(parent.read(lo, upto=first))
        opener = next((r.position for r in reversed(rows) if _observed(r.topic)), None)
        if opener is not None:
            first = opener
            break
        first = lo
    last = position + 1
    while last < head:  # forward to its last decision
        rows = list(parent.read(last, upto=min(head, last + _PAGE)))
        closer = next((r.position - 1 for r in rows if _observed(r.topic)), None)
        if closer is not None:
            last = closer
            break
        last = rows[-1].position if rows else head
    return max(first, 1), last


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
    except CopyMismatch as e:  # a damaged parent is exit 3 before anything else is judged
        raise ForkIntegrityError(str(e)) from None
    inside = transaction_around(parent, position, head)
    if inside is not None:  # the caller removes the child
        first, last = inside
        valid = " or ".join(str(p) for p in (first - 1, last) if p >= 1)
        raise ForkError(
            f"--at {position} is inside a transaction: positions {first}..{last} were appended together "
            f"(an observation and the decisions it led to); fork at {valid}"
        )
    opened = open_runs_at(parent, position)
    origin = ForkOrigin(db_path=parent_path, run_id=run_id, position=position, head_hash=parent_hash.hex())
    marker = RunForked(at=now, forked_from=origin, open_runs=opened)
    topic, payload = codec.encode(marker)
    stream = marker.stream()
    [forked_at] = child.append(
        [NewRecord(stream=stream, version=child.stream_version(stream) + 1, topic=topic, payload=payload)]
    )
    return ForkResult(position=position, head_hash=parent_hash.hex(), forked_position=forked_at, open_runs=opened)
