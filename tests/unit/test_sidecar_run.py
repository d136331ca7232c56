"""Sidecar work queued during a run (behaviour §12), as pure kernel
decisions: a unit's sidecar requests become the seed's chained sidecar
nodes (ids, kinds, queue order), run between regular units without holding
them, and are put back, not re-run, by a later run."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.events import SpawnRequest
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import Recorded, enter, finish

CMD = ["true"]
REQUESTS = (
    SpawnRequest(id="T01", sidecar="hook", unit_type="hook/code-review", command=("true",)),
    SpawnRequest(id="M001", sidecar="triage", unit_type="triage-captures", command=("true",)),
    SpawnRequest(id="Q1", sidecar="quick-task", command=("true",)),
)
IDS = [
    "sidecar-0000:hook:hook/code-review:T01",
    "sidecar-0001:triage:triage-captures:M001",
    "sidecar-0002:quick-task:quick-task:Q1",
]


def turns(out) -> list[ev.TurnStarted]:
    return [d for d in out if isinstance(d, ev.TurnStarted)]


def test_sidecars_are_queued_chained_and_run_between_regular_units():
    clock = StepClock()
    k = Recorded()
    src = plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "b", "command": CMD}, {"id": "c", "command": CMD}]))
    out = enter(k, src, clock, workers=2)
    [a] = turns(out)
    out = finish(k, a, clock, spawns=REQUESTS)
    queued = [d for d in out if isinstance(d, ev.SidecarQueued)]
    assert [q.node.id for q in queued] == IDS and [q.index for q in queued] == [0, 1, 2]
    assert [q.node.kind for q in queued] == ["hook", "verification", "team-worker"]
    assert [q.node.depends_on for q in queued] == [(), (IDS[0],), (IDS[1],)]
    assert all(q.queued_by == "a" for q in queued)
    # b (the next regular unit) and the first sidecar start together: neither waits for the other
    assert sorted(t.unit_id for t in turns(out)) == sorted(["b", IDS[0]])
    assert k.state.nodes["b"].depends_on == ("a",)  # no regular unit waits for sidecar work
    assert "complete-slice:M1/S1" not in [d for q in queued for d in q.node.depends_on]
    by_unit = {t.unit_id: t for t in turns(out)}
    out = finish(k, by_unit[IDS[0]], clock)
    assert [t.unit_id for t in turns(out)] == [IDS[1]]  # the queue, in order, one at a time
    out = finish(k, by_unit["b"], clock)
    assert [t.unit_id for t in turns(out)] == ["c"]
    order = list(k.state.graph.order)
    assert order.index("a") < order.index(IDS[0]) < order.index(IDS[1]) < order.index(IDS[2]) < order.index("b")


def test_a_later_run_puts_sidecars_back_and_does_not_rerun_finished_ones():
    clock = StepClock()
    k = Recorded()
    src = plan_toml(("S1", [{"id": "a", "command": CMD}]))
    out = enter(k, src, clock, workers=1)
    out = finish(k, turns(out)[0], clock, spawns=REQUESTS[:1])
    while ts := [t for t in turns(out) if t.unit_type != "complete-slice"]:  # (complete-slice has no command)
        out = finish(k, ts[0], clock)
    assert [e.status for e in k.log if isinstance(e, ev.KernelExited)] == ["ok"]
    assert k.state.unit(IDS[0]).outcome == "completed"
    k2 = Kernel()
    for e in k.log:
        k2.apply(e)
    out = enter(k2, src, clock, run_id="r2", workers=1)
    assert IDS[0] in k2.state.nodes and not turns(out)


def test_a_bad_sidecar_request_is_rejected_with_a_reason():
    clock = StepClock()
    k = Recorded()
    out = enter(k, plan_toml(("S1", [{"id": "a", "command": CMD}])), clock)
    out = finish(k, turns(out)[0], clock, spawns=(SpawnRequest(id="x", sidecar="hook"),))
    [rejected] = [d.data for d in out if isinstance(d, ev.PhaseResult) and d.action == "sidecar-rejected"]
    assert rejected == {"id": "x", "reason": "command must be a non-empty array of non-empty strings"}
