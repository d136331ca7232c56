"""Circuit breakers as a read model: every gate's breaker, at any position.

The fold is ``uok.domain.policies.breaker.apply``, the very function the kernel uses to
decide whether a gate may run, so the state this projection reports at
position P is the state the runner acted on at P. Only the three event
types that move a breaker are decoded.
"""

from __future__ import annotations

from typing import ClassVar

from uok.domain.events import Event
from uok.domain.policies import breaker as brk
from uok.projections.base import Projection


class BreakersProjection(Projection[brk.BreakerBook]):
    name: ClassVar[str] = "breakers"
    version: ClassVar[int] = 1
    state_type: ClassVar[type] = brk.BreakerBook
    types: ClassVar[frozenset[str]] = brk.FOLDED_TYPES

    def apply(self, state: brk.BreakerBook, position: int, event: Event) -> brk.BreakerBook:
        return brk.apply(state, event, position)
