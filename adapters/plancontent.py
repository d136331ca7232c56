"""Resolving a plan content reference from the store (uok.domain.plan.content).

Readers that fold the whole log in order resolve references as they go
(``KernelState.contents``, ``CompiledGraphs``). A reader that reads one
run's stream (a timeline, ``uok steer``) meets a ``PlanCompiled`` that
references its graph without the event holding it: :func:`with_graph`
finds that event, the latest ``PlanCompiled`` of the same plan before it
holding a graph with the referenced hash.
"""

from __future__ import annotations

import msgspec
from uok.domain import events as ev
from uok.domain.log import codec
from uok.domain.plan.content import PlanContentMissing

TOPICS = tuple(f"PlanCompiled/v{v}" for v in range(1, ev.PlanCompiled.VERSION + 1))


def with_graph(store, position: int, e: ev.PlanCompiled) -> ev.PlanCompiled:
    """``e`` (recorded at ``position``) carrying its graph: its own, or the
    one the earlier event it references holds (PlanContentMissing, exit 3,
    when no earlier event does)."""
    if e.graph is not None:
        return e
    needle = e.graph_sha256.encode()
    graph = None
    for r in store.read(0, upto=position - 1, topics=TOPICS):
        if needle not in bytes(r.payload):  # only the events naming this hash are decoded
            continue
        held = codec.decode(r.topic, r.payload)
        if isinstance(held, ev.PlanCompiled) and held.graph is not None and held.plan_id == e.plan_id:
            graph = held.graph
    if graph is None:
        raise PlanContentMissing(
            f"run {e.run_id}: PlanCompiled at {position} references graph {e.graph_sha256[:12]} of plan "
            f"{e.plan_id!r}, which no earlier PlanCompiled holds"
        )
    return msgspec.structs.replace(e, graph=graph)
