"""Every projection uok knows, by name (for rebuild, status and tooling).

Add one line per projection. ``ALL`` holds instances with their default
configuration; ``by_name`` looks one up.
"""

from __future__ import annotations

from projections.base import Projection
from projections.breakers import BreakersProjection
from projections.costs import CostLedgerProjection
from projections.gates import GateHistoryProjection
from projections.inbox import InboxProjection
from projections.metrics import MetricsProjection
from projections.runs import RunsProjection
from projections.turns import TurnsProjection
from projections.units import UnitRuntimeProjection

ALL: tuple[Projection, ...] = (
    InboxProjection(),
    UnitRuntimeProjection(),
    RunsProjection(),
    TurnsProjection(),
    GateHistoryProjection(),
    CostLedgerProjection(),
    BreakersProjection(),
    MetricsProjection(),
)


def by_name(name: str) -> Projection:
    for p in ALL:
        if p.name == name:
            return p
    raise KeyError(f"no projection named {name!r} (known: {', '.join(p.name for p in ALL)})")
