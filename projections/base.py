"""What a projection is: a pure fold of events into a read model.

A projection never reads anything but the events it is given, so the same
fold serves three purposes: the live read model (resumed from its tracked
position), a rebuild from zero, and the state "as of" any past position
(nearest snapshot, folded forward). Its state is a msgspec Struct so that a
snapshot is one ``msgpack`` encode away and round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Generic, TypeVar

import msgspec

from domain.events import Event

S = TypeVar("S", bound=msgspec.Struct)


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
