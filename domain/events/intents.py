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
