"""Events of parallel intent (behaviour §12): a ready unit waiting because
its read/write intents overlap those of a unit running or starting."""

from __future__ import annotations

from uok.domain.events.base import Event


class UnitWaiting(Event, frozen=True, kw_only=True):
    """A ready unit is not dispatched now: its intents overlap those of
    ``waits_for`` (running, or dispatched in the same batch). It stays
    ``queued`` and starts when that unit is done. Emitted once per run and
    reason (``uok.domain.kernel.rules.intents``)."""

    plan_id: str
    unit_id: str
    waits_for: str
    reason: str


class IntentDeclared(Event, frozen=True, kw_only=True):
    """A running unit declared more read/write intents at run time (``uok
    intent`` from inside its task): no unit whose intents overlap them is
    dispatched until its turn ends."""

    plan_id: str
    unit_id: str
    turn_id: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    message_id: str = ""


class IntentRefused(Event, frozen=True, kw_only=True):
    """A run-time intent that overlaps a running unit's was refused: the task
    is told why (and may wait and ask again, or do without)."""

    plan_id: str
    unit_id: str
    turn_id: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    reason: str = ""
    message_id: str = ""
