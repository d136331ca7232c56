"""Cost ledger read model (behaviour §9): what each run spent, by model and by
unit, folded from ``CostRecorded`` (the cost guard's priced usage of each
turn). One part per run; totals are sums over the parts, so a diff between
two positions is a subtraction.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
from uok.domain.events import Event
from uok.projections.base import PartitionedProjection


class ModelCost(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    records: int = 0


class RunCost(msgspec.Struct, kw_only=True, gc=False):
    usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    records: int = 0
    unpriced: int = 0  # usage of models missing from the cost table (priced at 0)
    by_model: dict[str, ModelCost] = {}
    by_unit: dict[str, float] = {}


class CostLedgerProjection(PartitionedProjection):
    name: ClassVar[str] = "costs"
    version: ClassVar[int] = 1
    part_type: ClassVar[type] = RunCost
    types: ClassVar[frozenset[str]] = frozenset({"CostRecorded"})
    delta_density: ClassVar[int] = 10  # a delta every 100 events by default (base.py)

    def key(self, event: Event) -> str:
        return event.run_id

    def apply_part(self, c: RunCost, position: int, e) -> RunCost:
        c.usd += e.cost_usd
        c.input_tokens += e.input_tokens
        c.output_tokens += e.output_tokens
        c.records += 1
        c.unpriced += not e.priced
        m = c.by_model.get(e.model)
        if m is None:
            m = c.by_model[e.model] = ModelCost()
        m.usd += e.cost_usd
        m.input_tokens += e.input_tokens
        m.output_tokens += e.output_tokens
        m.records += 1
        c.by_unit[e.unit_id] = c.by_unit.get(e.unit_id, 0.0) + e.cost_usd
        return c
