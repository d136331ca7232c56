"""Unit runtime read model (behaviour §13): every unit's lifecycle, per plan.

The upstream kept one JSON file per unit, merged read-modify-write under a
lock file. Here the record is a fold of the unit's ``UnitTransitioned``
events, so it can never disagree with the log, and it can be computed as
of any past position (``uok state --at P``). One part per plan: a plan's
units change together while it runs and then rest, so snapshots share the
parts of finished plans. A large plan's part is stored in snapshots as
chunks of ``CHUNK`` units (projections/chunks.py), so a snapshot taken while
it runs rewrites the chunks of the units that moved, not the whole plan.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from uok.domain.events import Event, UnitHeld, UnitTransitioned
from uok.domain.policies.lifecycle import UnitRecord
from uok.projections.base import PartitionedProjection


class PlanUnits(msgspec.Struct, kw_only=True, gc=False):
    units: dict[str, UnitRecord] = {}


CHUNK = 32  # units per chunk of a large plan's part in snapshots
CHUNK_OVER = 64  # a plan's part of more units than this is stored in snapshots as chunks (~6 KB)
_PREFIX = b"\x81\xa5units"  # how a PlanUnits encoding begins: a map of one field, "units", then the units' map


class UnitRuntimeProjection(PartitionedProjection):
    name: ClassVar[str] = "units"
    # 2: stores uok.domain.policies.lifecycle.UnitRecord; 3: UnitHeld reasons; 4: a large plan's part stored
    # in snapshots as chunks (projections/chunks.py): snapshots of 3 are not read, the read model is refolded
    version: ClassVar[int] = 4
    part_type: ClassVar[type] = PlanUnits
    types: ClassVar[frozenset[str]] = frozenset({"UnitTransitioned", "UnitHeld"})
    # ten deltas per interval like runs, turns and costs (base.py): a delta rewrites the chunks of the
    # units that moved, not the plan (one per interval before chunks: ten made a 2,000-task chain's file
    # 54.5 MB instead of ~14; tests/integration/test_snapshot_disk.py)
    delta_density: ClassVar[int] = 10

    def __init__(self, *, chunk: int = CHUNK, chunk_over: int = CHUNK_OVER):
        """``chunk``, ``chunk_over``: the chunk layout of snapshots (tests use small
        ones). Any layout is read back alike; a resumed catch-up writes the same
        bytes as an uninterrupted one only with the same layout."""
        self.chunk, self.chunk_over = chunk, chunk_over

    def entries(self, part: PlanUnits) -> dict[str, UnitRecord]:
        return part.units

    def of_entries(self, entries: dict[str, UnitRecord]) -> PlanUnits:
        return PlanUnits(units=entries)

    def entry(self, event: Event) -> str:
        return event.unit_id  # type: ignore[attr-defined]

    def count(self, data: bytes) -> int:
        """Read from the units' map header (msgpack fixmap, map 16 or map 32), not decoded."""
        if data.startswith(_PREFIX) and len(data) > 7:
            b = data[7]
            if 0x80 <= b <= 0x8F:
                return b & 0x0F
            if b == 0xDE:
                return int.from_bytes(data[8:10], "big")
            if b == 0xDF:
                return int.from_bytes(data[8:12], "big")
        return super().count(data)

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
