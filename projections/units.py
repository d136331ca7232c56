"""Unit runtime read model (behaviour §13): every unit's lifecycle, per plan.

The upstream kept one JSON file per unit, merged read-modify-write under a
lock file. Here the record is a fold of the unit's ``UnitTransitioned``
events, so it can never disagree with the log, and it can be computed as
of any past position (``uok state --at P``). One part per plan: a plan's
units change together while it runs and then rest, so snapshots share the
parts of finished plans.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from uok.domain.events import Event, UnitHeld, UnitTransitioned
from uok.domain.policies.lifecycle import UnitRecord
from uok.projections.base import PartitionedProjection


class PlanUnits(msgspec.Struct, kw_only=True, gc=False):
    units: dict[str, UnitRecord] = {}


class UnitRuntimeProjection(PartitionedProjection):
    name: ClassVar[str] = "units"
    version: ClassVar[int] = 3  # 2: stores uok.domain.policies.lifecycle.UnitRecord; 3: UnitHeld reasons
    part_type: ClassVar[type] = PlanUnits
    types: ClassVar[frozenset[str]] = frozenset({"UnitTransitioned", "UnitHeld"})
    # one delta per interval (base.py), not the ten of runs, turns and costs: a part is a whole
    # plan's units, so every delta rewrites it; ten per interval made a 2,000-task chain's file
    # 54.5 MB instead of ~14 (tests/integration/test_snapshot_disk.py)
    delta_density: ClassVar[int] = 1

    def key(self, event: Event) -> str:
        return event.plan_id  # type: ignore[attr-defined]

    # The runner hands this fold only the types it names, so ``e`` is a
    # UnitTransitioned; narrowing the parameter says so at no cost per event.
    def apply_part(self, part: PlanUnits, position: int, e: UnitTransitioned | UnitHeld) -> PlanUnits:  # type: ignore[override]
        if isinstance(e, UnitHeld):  # a queued unit waits for artifacts: its reason says which (behaviour §11)
            held = part.units.get(e.unit_id)
            if held is not None and held.state == "queued":
                held.reason = e.reason
            return part
        u = part.units.get(e.unit_id)
        if u is None:
            u = part.units[e.unit_id] = UnitRecord(unit_id=e.unit_id, plan_id=e.plan_id)
        u.apply(e)
        u.position = position
        return part
