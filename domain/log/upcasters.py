"""Upcasters: how a payload an older version of an event wrote becomes today's.

When an event's shape changes in a way old payloads cannot decode into
(a field renamed, removed, retyped, or added without a default), bump the
event's ``VERSION`` and add one function here per old version, taking the
payload of version N (a ``dict``, ``type`` tag included) and returning
the payload of version N + 1. List it in :data:`UPCASTERS` under
``(event name, N)``. The codec (:mod:`uok.domain.log.codec`) chains them,
so a v0 payload passes through every step up to today's version, and old
logs decode into today's Structs everywhere: the kernel, replay, the read
models, time travel.

A field *added with a default* needs no upcaster and no new version: old
payloads decode with the default.

The codec reads this table when it is imported; this module imports
nothing from the codec, so the domain has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def kernel_entered_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v2 added content addressing (``plan_id``, ``plan_sha256``,
    ``plan_by_ref``): a v1 entry holds its text and names no hash."""
    return {**data, "plan_id": "", "plan_sha256": "", "plan_by_ref": False}


def plan_compiled_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v2 added ``plan_id`` (required) and ``graph_sha256``: a v1 event
    always holds its graph, whose id is the plan's."""
    graph = data.get("graph")
    plan_id = graph.get("plan_id", "") if isinstance(graph, dict) else ""
    return {**data, "plan_id": plan_id, "graph_sha256": ""}


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("KernelEntered", 1): kernel_entered_v1,
    ("PlanCompiled", 1): plan_compiled_v1,
}
"""``(event name, version it reads) -> upcaster``."""
