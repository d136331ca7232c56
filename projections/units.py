"""Unit runtime read model (spec §13): every unit's lifecycle, per plan.

The upstream kept one JSON file per unit, merged read-modify-write under a
lock file. Here the record is a fold of the unit's ``UnitTransitioned``
events, so it can never disagree with the log, and it can be computed as
of any past position (``uok state --at P``). One part per plan: a plan's
units change together while it runs and then rest, so snapshots share the
parts of finished plans.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec

from domain.events import Event, UnitTransitioned
from projections.base import PartitionedProjection

TERMINAL = frozenset({"completed", "failed", "blocked", "cancelled", "stale", "runaway-recovered"})


class UnitView(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    """One unit as of some position. ``state`` is the raw lifecycle state;
    ``outcome`` the last terminal state (it survives ``notified``)."""

    state: str = ""
    outcome: str = ""
    notified: bool = False
    attempt: int = 0
    dispatches: int = 0
    progress_count: int = 0
    transitions: int = 0
    last_turn: str = ""
    run_id: str = ""
    failure_class: str = "none"
    reason: str = ""
    updated_at: datetime | None = None
    last_progress_at: datetime | None = None
    position: int = 0  # of the last transition

    @property
    def display_state(self) -> str:
        """What a person wants to see: the outcome once the unit is final."""
        return self.outcome if self.state == "notified" else self.state


class PlanUnits(msgspec.Struct, kw_only=True, gc=False):
    units: dict[str, UnitView] = {}


class UnitRuntimeProjection(PartitionedProjection):
    name: ClassVar[str] = "units"
    version: ClassVar[int] = 1
    part_type: ClassVar[type] = PlanUnits
    types: ClassVar[frozenset[str]] = frozenset({"UnitTransitioned"})

    def key(self, event: Event) -> str:
        return event.plan_id  # type: ignore[attr-defined]

    def apply_part(self, part: PlanUnits, position: int, e: UnitTransitioned) -> PlanUnits:
        u = part.units.get(e.unit_id)
        if u is None:
            u = part.units[e.unit_id] = UnitView()
        to = e.to_state
        u.state = to
        if to in TERMINAL:
            u.outcome = to
            u.notified = False
        elif to == "notified":
            u.notified = True
        elif to == "progress":
            u.progress_count += 1
            u.last_progress_at = e.at
        u.attempt = e.attempt
        u.dispatches = e.dispatches
        u.transitions += 1
        if e.turn_id:
            u.last_turn = e.turn_id
        u.run_id = e.run_id
        u.failure_class = e.failure_class
        u.reason = e.reason
        u.updated_at = e.at
        u.position = position
        return part
