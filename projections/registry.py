"""Every projection uok knows, by name (for rebuild, status and tooling).

Add one line per projection. ``ALL`` holds instances with their default
configuration; ``by_name`` looks one up.
"""

from __future__ import annotations

from uok.projections.base import Projection
from uok.projections.breakers import BreakersProjection
from uok.projections.costs import CostLedgerProjection
from uok.projections.counters import CountersProjection
from uok.projections.evals import EvalsProjection
from uok.projections.gates import GateHistoryProjection
from uok.projections.inbox import InboxProjection
from uok.projections.metrics import MetricsProjection
from uok.projections.runs import RunsProjection
from uok.projections.turns import TurnsProjection
from uok.projections.units import UnitRuntimeProjection

ALL: tuple[Projection, ...] = (
    InboxProjection(),
    UnitRuntimeProjection(),
    RunsProjection(),
    TurnsProjection(),
    GateHistoryProjection(),
    CostLedgerProjection(),
    BreakersProjection(),
    MetricsProjection(),
    EvalsProjection(),
    CountersProjection(),
)


def by_name(name: str) -> Projection:
    for p in ALL:
        if p.name == name:
            return p
    raise KeyError(f"no projection named {name!r} (known: {', '.join(p.name for p in ALL)})")
