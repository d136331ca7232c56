"""Unit lifecycle (behaviour §13b): legal transitions and the per-unit record.

A unit's record is a fold of its ``UnitTransitioned`` events. Attempts and
dispatch counts are *derived from the log*, never kept in a counter that a
restart or a recovery path could reset: resetting such counters is how the
system this replaces re-dispatched units 7x to 43x (behaviour §18).
"""

from __future__ import annotations

from datetime import datetime

import msgspec
from uok.domain.errors import RuntimeFailure
from uok.domain.events import FailureClass, UnitTransitioned

TERMINAL = frozenset({"completed", "failed", "blocked", "cancelled", "stale", "runaway-recovered"})
IN_FLIGHT = frozenset({"claimed", "running", "progress"})
RETRYABLE = frozenset({"failed", "stale", "runaway-recovered"})

_AFTER_RUNNING = frozenset({"progress", "completed", "failed", "blocked", "cancelled", "stale", "runaway-recovered"})
LEGAL: dict[str, frozenset[str]] = {
    "": frozenset({"queued"}),
    "queued": frozenset({"claimed", "cancelled", "blocked", "runaway-recovered"}),
    "claimed": frozenset({"running", "cancelled", "stale"}),
    "running": _AFTER_RUNNING,
    "progress": _AFTER_RUNNING,
    "completed": frozenset({"notified"}),
    "failed": frozenset({"notified", "queued"}),
    "stale": frozenset({"notified", "queued"}),
    "runaway-recovered": frozenset({"notified"}),
    "blocked": frozenset({"notified"}),
    "cancelled": frozenset({"notified", "queued"}),
    "notified": frozenset({"queued"}),
}
"""from-state → allowed to-states. ``cancelled → queued`` lets a later run
pick up a unit an operator or a signal cancelled; ``runaway-recovered`` is
never re-queued by a rule of the run that stopped it: that is its whole
point. ``notified → queued`` is a later run re-queueing work that had ended,
always just after a recorded ``UnitRequeued`` saying why (an operator's
``uok retry``, a re-run of a failed unit, an amended task;
``uok.domain.kernel.rules.requeue``)."""


class IllegalTransition(RuntimeFailure, ValueError):
    pass


def check_transition(unit_id: str, from_state: str, to_state: str) -> None:
    if to_state not in LEGAL.get(from_state, frozenset()):
        raise IllegalTransition(f"unit {unit_id}: {from_state or 'new'} -> {to_state} is not a legal transition")


class UnitRecord(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """The runtime record of one unit: the fold of its ``UnitTransitioned``
    events. The kernel decides from it and the unit-runtime projection
    stores it, so both read one definition of the lifecycle.
    (array_like/gc=False: compact snapshots, no GC tracking of millions of
    small records during a rebuild.)"""

    unit_id: str = ""
    plan_id: str = ""
    state: str = ""
    outcome: str = ""  # last terminal state; survives the ``notified`` step
    notified: bool = False
    attempt: int = 0
    dispatches: int = 0
    failure_class: FailureClass = "none"
    reason: str = ""
    turn_id: str = ""  # the last turn that moved the unit
    run_id: str = ""
    progress_count: int = 0
    transitions: int = 0
    updated_at: datetime | None = None
    last_progress_at: datetime | None = None
    position: int = 0  # log position of the last transition, set by read models that know it

    @property
    def display_state(self) -> str:
        """The state a person wants to see: the outcome once notified."""
        return self.outcome if self.state == "notified" else self.state

    def apply(self, e: UnitTransitioned) -> None:
        to = e.to_state
        if self.state == "notified" and to == "queued":  # re-queued: the outcome it had is history
            self.outcome, self.notified = "", False
        self.state = to
        if to in TERMINAL:
            self.outcome = to
            self.notified = False
        elif to == "notified":
            self.notified = True
        elif to == "progress":
            self.progress_count += 1
            self.last_progress_at = e.at
        self.attempt = e.attempt
        self.dispatches = e.dispatches
        self.failure_class = e.failure_class
        self.reason = e.reason
        if e.turn_id:
            self.turn_id = e.turn_id
        self.run_id = e.run_id
        self.updated_at = e.at
        self.transitions += 1

    def retry_budget_remaining(self, retries: int) -> int:
        """Attempts left: (retries + 1) allowed in all, ``attempt`` used so far."""
        return retries + 1 - self.attempt
