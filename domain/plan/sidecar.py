"""The seed's sidecar queue and execution-graph snapshot (behaviour §12).

Sidecar work (hooks, triage, quick tasks) queued while a run is busy is
turned into a chain of graph nodes, one per item, so it runs through the
same ordering as everything else and in the order it was queued:

* node id ``sidecar-<index, 4 digits>:<kind>:<unit type>:<unit id>``;
* node kind from the item's kind: ``hook`` -> ``hook``, ``triage`` ->
  ``verification``, anything else (``quick-task``...) -> ``team-worker``;
* each node depends on the previous one; ``metadata["index"]`` is the
  item's place in the queue.

:func:`schedule_sidecar_queue` returns the items in the order the graph
runs them, which is the queue's own order: the chain guarantees it (the
seed checks it by running the graph with a recording handler per kind).
:func:`execution_graph_snapshot` is the seed's ``before-unit`` /
``after-unit`` picture of a graph: its nodes sorted by id, its order and
its file conflicts. Pure: the capture time is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from uok.domain.plan.graph import FileConflict, NodeLike, detect_file_conflicts, topological_order

SIDECAR_KINDS = {"hook": "hook", "triage": "verification"}
DEFAULT_SIDECAR_KIND = "team-worker"
SnapshotPhase = Literal["before-unit", "after-unit"]


class SidecarItem(msgspec.Struct, frozen=True, kw_only=True):
    """One queued piece of sidecar work."""

    kind: str  # hook | triage | quick-task | ...
    unit_type: str
    unit_id: str
    payload: dict[str, Any] = {}


class SidecarNode(msgspec.Struct, frozen=True, kw_only=True):
    """A sidecar item as a graph node (``NodeLike``)."""

    id: str
    kind: str
    depends_on: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    metadata: dict[str, Any] = {}


def node_kind(item_kind: str) -> str:
    return SIDECAR_KINDS.get(item_kind, DEFAULT_SIDECAR_KIND)


def build_sidecar_queue_nodes(queue: Sequence[SidecarItem]) -> list[SidecarNode]:
    nodes: list[SidecarNode] = []
    for index, item in enumerate(queue):
        node_id = f"sidecar-{index:04d}:{item.kind}:{item.unit_type}:{item.unit_id}"
        nodes.append(
            SidecarNode(
                id=node_id,
                kind=node_kind(item.kind),
                depends_on=(nodes[-1].id,) if nodes else (),
                metadata={"index": index, "unit_type": item.unit_type, "unit_id": item.unit_id},
            )
        )
    return nodes


def schedule_sidecar_queue(queue: Sequence[SidecarItem]) -> list[SidecarItem]:
    """The queue's items in the order their graph runs them (the queue's order)."""
    if len(queue) <= 1:
        return list(queue)
    nodes = {n.id: n for n in build_sidecar_queue_nodes(queue)}
    return [queue[nodes[nid].metadata["index"]] for nid in topological_order(nodes.values())]


class GraphSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    captured_at: datetime
    phase: SnapshotPhase
    nodes: tuple[str, ...]  # ids, sorted
    order: tuple[str, ...]
    conflicts: tuple[FileConflict, ...]


def execution_graph_snapshot(nodes: Sequence[NodeLike], phase: SnapshotPhase, captured_at: datetime) -> GraphSnapshot:
    ordered = sorted(nodes, key=lambda n: n.id)
    return GraphSnapshot(
        captured_at=captured_at,
        phase=phase,
        nodes=tuple(n.id for n in ordered),
        order=tuple(topological_order(nodes)),
        conflicts=tuple(detect_file_conflicts(ordered)),
    )
