"""Counters of what happened, for ``/metrics`` (behaviour §15,
metrics-central): sub-agents spawned (by model mode) and units that waited
on another's read/write intents (``UnitWaiting``). Mode transitions come
from the ``runs`` read model, eval results from ``evals``; everything is
exposed through the one snapshot (:func:`uok.projections.metrics.snapshot`).
One part per counter, keyed ``name:label``."""

from __future__ import annotations

from typing import ClassVar

import msgspec
from uok.domain import events as ev
from uok.projections.base import PartitionedProjection

SUBAGENTS, INTENT_WAITS = "subagents_spawned", "intent_waits"


class Count(msgspec.Struct, kw_only=True, gc=False):
    n: int = 0


class CountersProjection(PartitionedProjection):
    name: ClassVar[str] = "counters"
    version: ClassVar[int] = 1
    part_type: ClassVar[type] = Count
    types: ClassVar[frozenset[str]] = frozenset({"SubagentSpawned", "UnitWaiting"})

    def key(self, e) -> str:
        if type(e) is ev.SubagentSpawned:
            return f"{SUBAGENTS}:{e.model_mode}"
        return f"{INTENT_WAITS}:"

    def apply_part(self, part: Count, position: int, e) -> Count:
        part.n += 1
        return part
