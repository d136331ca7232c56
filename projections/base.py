"""What a projection is: a pure fold of events into a read model.

A projection never reads anything but the events it is given, so the same
fold serves three purposes: the live read model (resumed from its tracked
position), a rebuild from zero, and the state "as of" any past position
(nearest snapshot, folded forward). Its state is a msgspec Struct so that a
snapshot is one ``msgpack`` encode away and round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import GenericAlias
from typing import Any, ClassVar, Generic, TypeVar

import msgspec
from uok.domain.events import Event

S = TypeVar("S")  # a msgspec Struct; for a partitioned projection, a dict of them


class Projection(Generic[S]):
    """Subclass with ``name``, ``state_type`` and ``apply``.

    ``types``: names of the event classes the fold cares about (``None`` for
    all). Runners use it to skip decoding events a projection ignores, which
    is most of the cost of a rebuild.
    ``version``: bump when the fold's logic changes; a stored read model of
    another version is rebuilt from zero.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 1
    state_type: ClassVar[type]
    types: ClassVar[frozenset[str] | None] = None
    # delta snapshots between full ones (projections/manifests.py); every read model takes them today
    delta_snapshots: ClassVar[bool] = True
    # how many delta snapshots per delta interval (when it divides the interval): runs, units, turns and
    # costs, the parts a one-run question needs, take 10, so it folds at most a hundredth of a snapshot
    # interval for them (docs/performance.md, "Time travel in one process": the disk each costs; units,
    # a part per whole plan, can since its large parts are stored in snapshots as chunks: chunks.py)
    delta_density: ClassVar[int] = 1

    def initial(self) -> S:
        return self.state_type()

    def apply(self, state: S, position: int, event: Event) -> S:
        """Fold one event; may mutate ``state`` and must return the new state."""
        raise NotImplementedError

    def encode(self, state: S) -> bytes:
        return msgspec.msgpack.encode(state)

    def decode(self, data: bytes) -> S:
        return msgspec.msgpack.decode(data, type=self.state_type)

    def wants(self, topic: str) -> bool:
        return self.types is None or topic.partition("/")[0] in self.types


def fold(projection: Projection[S], events: Iterable[tuple[int, Event]], state: S | None = None) -> tuple[S, int]:
    """Fold ``(position, event)`` pairs; returns the state and the last position seen."""
    if state is None:
        state = projection.initial()
    last = 0
    for last, e in events:
        if projection.types is None or type(e).__name__ in projection.types:
            state = projection.apply(state, last, e)
    return state, last


class PartitionedProjection(Projection[dict]):
    """A projection whose state is a dict of independent *parts* (one per
    plan, per run, per gate …), each a msgspec Struct.

    Why: read models such as the unit runtime grow with the log (one record
    per unit ever planned). Persisting them as one blob would re-encode and
    re-write the whole model at every commit and snapshot. With parts, the
    runner re-encodes only the parts touched since the last write, and
    snapshots share unchanged parts by content hash, so a snapshot costs in
    proportion to what changed, not to the size of the model.

    Subclass with ``part_type``, ``key(event)`` (which part an event
    touches, ``None`` to ignore it) and ``apply_part``.
    """

    part_type: ClassVar[type]
    # a part of more than ``chunk_over`` entries is stored in snapshots as chunks of ``chunk`` entries
    # (``entries``, ``of_entries``, ``entry``; projections/chunks.py); chunk 0: never
    chunk: int = 0
    chunk_over: int = 0

    def initial(self) -> dict:
        return {}

    def key(self, event: Event) -> str | None:
        return event.run_id

    def new_part(self, key: str):
        return self.part_type()

    def apply_part(self, part, position: int, event: Event):
        """Fold one event into one part; may mutate ``part``; returns the part."""
        raise NotImplementedError

    def apply(self, state: dict, position: int, event: Event) -> dict:
        k = self.key(event)
        if k is None:
            return state
        part = state.get(k)
        if part is None:
            part = self.new_part(k)
        state[k] = self.apply_part(part, position, event)
        return state

    # -- chunks (``chunk``): a part is a dict of entries, only ever added at the end
    def entries(self, part: Any) -> dict[str, Any]:
        """The part's entries, in order (read-only)."""
        raise NotImplementedError

    def of_entries(self, entries: dict[str, Any]) -> Any:
        """A part holding these entries."""
        raise NotImplementedError

    def entry(self, event: Event) -> str | None:
        """Which entry of its part an event changes (or adds)."""
        raise NotImplementedError

    def count(self, data: bytes) -> int:
        """How many entries the part encoded as ``data`` holds."""
        return len(self.entries(msgspec.msgpack.decode(data, type=self.part_type)))

    def encode(self, state: dict) -> bytes:
        return msgspec.msgpack.encode(state)

    def decode(self, data: bytes) -> dict:
        return msgspec.msgpack.decode(data, type=GenericAlias(dict, (str, self.part_type)))
