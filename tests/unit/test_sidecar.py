"""The seed's upstream execution-graph cases for the sidecar queue and the
graph snapshot (behaviour §12, §17 "uok-execution-graph"): sidecar kinds,
sidecar order, snapshot order a, b, c with a conflict on the shared file.
(The conflict-free and reactive batch cases are in test_graph.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

from uok.domain.plan.graph import FileConflict, Node
from uok.domain.plan.sidecar import (
    SidecarItem,
    build_sidecar_queue_nodes,
    execution_graph_snapshot,
    schedule_sidecar_queue,
)

QUEUE = [
    SidecarItem(kind="hook", unit_type="hook/code-review", unit_id="M001/S01/T01"),
    SidecarItem(kind="triage", unit_type="triage-captures", unit_id="M001"),
    SidecarItem(kind="quick-task", unit_type="quick-task", unit_id="Q1"),
]


def test_sidecar_kinds_map_to_node_kinds_in_a_chain():
    nodes = build_sidecar_queue_nodes(QUEUE)
    assert [n.kind for n in nodes] == ["hook", "verification", "team-worker"]
    assert [n.id for n in nodes] == [
        "sidecar-0000:hook:hook/code-review:M001/S01/T01",
        "sidecar-0001:triage:triage-captures:M001",
        "sidecar-0002:quick-task:quick-task:Q1",
    ]
    assert [n.depends_on for n in nodes] == [(), (nodes[0].id,), (nodes[1].id,)]
    assert [n.metadata["index"] for n in nodes] == [0, 1, 2]


def test_sidecar_order_is_the_queue_order():
    assert schedule_sidecar_queue(QUEUE) == QUEUE
    reversed_kinds = list(reversed(QUEUE))  # ids sort by index, not by kind or unit
    assert schedule_sidecar_queue(reversed_kinds) == reversed_kinds
    many = [SidecarItem(kind="quick-task", unit_type="quick-task", unit_id=f"Q{i}") for i in range(12)]
    assert schedule_sidecar_queue(many) == many  # 4-digit padding keeps 10 after 9
    assert schedule_sidecar_queue(QUEUE[:1]) == QUEUE[:1] and schedule_sidecar_queue([]) == []


def test_snapshot_orders_a_b_c_and_reports_the_shared_file():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    nodes = [Node("b", ("a",), ("shared.ts",)), Node("a", (), ("shared.ts",)), Node("c")]
    snap = execution_graph_snapshot(nodes, "before-unit", at)
    assert snap.order == ("a", "b", "c")
    assert snap.nodes == ("a", "b", "c") and snap.phase == "before-unit" and snap.captured_at == at
    assert snap.conflicts == (FileConflict("a", "b", "shared.ts"),)
