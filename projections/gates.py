"""Gate history read model (behaviour §2, §19: ``gate_runs`` as a projection).

Per gate: how its runs ended, how often it retried or was short-circuited
by an open breaker, the most recent runs, and each failure fingerprint with
its count (the same memory the kernel enriches failures with). Folded from
``GateRun``, the runner's decision about each attempt; one part per gate.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from uok.domain.events import Event
from uok.projections.base import PartitionedProjection

RECENT = 20  # most recent runs kept per gate (counters stay exact)


class GateRunView(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    position: int
    run_id: str
    turn_id: str
    unit_id: str
    attempt: int
    outcome: str
    failure_class: str = "none"
    rationale: str = ""
    short_circuited: bool = False
    at: datetime | None = None


class FingerprintView(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    count: int = 0
    failure_class: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    rationale: str = ""


class GateHistory(msgspec.Struct, kw_only=True, gc=False):
    gate_type: str = ""
    runs: int = 0
    by_outcome: dict[str, int] = {}
    short_circuits: int = 0
    duration_ms: int = 0
    recent: list[GateRunView] = []
    fingerprints: dict[str, FingerprintView] = {}


class GateHistoryProjection(PartitionedProjection):
    name: ClassVar[str] = "gates"
    version: ClassVar[int] = 1
    part_type: ClassVar[type] = GateHistory
    types: ClassVar[frozenset[str]] = frozenset({"GateRun"})

    def key(self, event: Event) -> str:
        return event.gate_id  # type: ignore[attr-defined]

    def apply_part(self, g: GateHistory, position: int, e) -> GateHistory:
        g.gate_type = e.gate_type or g.gate_type
        g.runs += 1
        g.by_outcome[e.outcome] = g.by_outcome.get(e.outcome, 0) + 1
        g.short_circuits += e.short_circuited
        g.duration_ms += e.duration_ms
        g.recent.append(
            GateRunView(
                position=position,
                run_id=e.run_id,
                turn_id=e.turn_id,
                unit_id=e.unit_id,
                attempt=e.attempt,
                outcome=e.outcome,
                failure_class=e.failure_class,
                rationale=e.rationale[:200],
                short_circuited=e.short_circuited,
                at=e.at,
            )
        )
        if len(g.recent) > RECENT:
            del g.recent[:-RECENT]
        if e.fingerprint and e.outcome not in ("pass", "skip"):
            f = g.fingerprints.get(e.fingerprint)
            if f is None:
                f = g.fingerprints[e.fingerprint] = FingerprintView(failure_class=e.failure_class, first_seen=e.at)
            f.count += 1
            f.last_seen = e.at
            f.rationale = e.rationale[:200]
        return g
