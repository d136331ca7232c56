"""Sub-agents: spawn requests, mode inheritance, lineage, the dependency rule, restarts."""

from __future__ import annotations

import pytest
from uok.domain import events as ev
from uok.domain.events import SpawnRequest, SubagentSpawned
from uok.domain.policies.modes import ModeError, resolve_permission_profile

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import Recorded, enter, finish, started

CMD = ["true"]


def spawned(out) -> list[SubagentSpawned]:
    return [d for d in out if isinstance(d, SubagentSpawned)]


def rejected(out) -> list[dict]:
    return [d.data for d in out if isinstance(d, ev.PhaseResult) and d.action == "spawn-rejected"]


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "standard"),
        ("", "standard"),
        (" Trusted ", "trusted"),
        ("read-only", "restricted"),
        ("default", "standard"),
    ],
)
def test_resolve_permission_profile(value, expected):
    assert resolve_permission_profile(value) == expected


def test_resolve_permission_profile_refuses_unknown_values():
    with pytest.raises(ModeError, match="unknown permission profile 'root'"):
        resolve_permission_profile("root")


def test_children_inherit_modes_unless_overridden_and_dependents_wait_for_them():
    clock = StepClock()
    k = Recorded()
    src = plan_toml(("S1", [{"id": "lead", "command": CMD}, {"id": "after", "command": CMD}]))
    out = k.handle(
        ev.KernelEntered(
            run_id="r1",
            at=clock(),
            pid=1,
            plan_path="p.toml",
            plan_source=src,
            workers=2,
            work_mode="build",
            model_mode="balanced",
            flags={"permission_profile": "trusted"},
        )
    )
    lead = started(out)[0]
    spawns = (
        SpawnRequest(id="lint", command=("ruff",)),
        SpawnRequest(id="review", command=("rev",), model_mode="deep", permission_profile="restricted"),
    )
    out = finish(k, lead, clock, spawns=spawns)
    a, b = spawned(out)
    assert (a.child_unit, a.work_mode, a.model_mode, a.permission_profile, a.overrides) == (
        "lead/lint",
        "build",
        "balanced",
        "trusted",
        {},
    )
    assert (b.model_mode, b.permission_profile) == ("deep", "restricted")
    assert b.overrides == {"model_mode": "deep", "permission_profile": "restricted"}
    assert a.lineage == ("lead",) and a.node.depends_on == ("lead",)
    assert a.node.metadata["parent"] == "lead" and a.node.metadata["model_mode"] == "balanced"
    assert sorted(t.unit_id for t in started(out)) == ["lead/lint", "lead/review"]  # "after" waits
    assert set(k.state.nodes["after"].depends_on) == {"lead", "lead/lint", "lead/review"}
    kids = {t.unit_id: t for t in started(out)}
    out = finish(k, kids["lead/lint"], clock)
    assert started(out) == []
    out = finish(k, kids["lead/review"], clock)
    assert [t.unit_id for t in started(out)] == ["after"]
    out = finish(k, started(out)[0], clock)
    assert next(d for d in out if isinstance(d, ev.KernelExited)).units_completed == 5


def test_grandchildren_carry_the_lineage_up_to_the_depth_limit():
    clock = StepClock()
    k = Recorded()
    turn = started(enter(k, plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "z", "command": CMD}])), clock))[0]
    lineages = []
    for depth in range(5):
        out = finish(k, turn, clock, spawns=(SpawnRequest(id=f"d{depth}", command=("x",)),))
        if depth == 4:
            assert spawned(out) == [] and "depth limit 4" in rejected(out)[0]["reason"]
            break
        (s,) = spawned(out)
        lineages.append(s.lineage)
        turn = next(t for t in started(out) if t.unit_id == s.child_unit)
    assert lineages[-1] == ("a", "a/d0", "a/d0/d1", "a/d0/d1/d2")
    assert {"a", "a/d0", "a/d0/d1", "a/d0/d1/d2", "a/d0/d1/d2/d3"} <= set(k.state.nodes["z"].depends_on)


def test_bad_requests_are_rejected_with_a_reason_and_do_not_stop_the_good_ones():
    clock = StepClock()
    k = Recorded()
    lead = started(enter(k, plan_toml(("S1", [{"id": "lead", "command": CMD}])), clock))[0]
    spawns = (
        SpawnRequest(id="ok", command=("x",)),
        SpawnRequest(id="ok", command=("x",)),  # duplicate
        SpawnRequest(id="bad/id", command=("x",)),
        SpawnRequest(id="nocmd"),
        SpawnRequest(id="wide", command=("x",), permission_profile="trusted"),  # parent is standard
        SpawnRequest(id="esc", command=("x",), writes=("../outside",)),
        SpawnRequest(error="spawn file line 7: Expected `object`"),
    )
    out = finish(k, lead, clock, spawns=spawns)
    assert [s.child_unit for s in spawned(out)] == ["lead/ok"]
    reasons = [r["reason"] for r in rejected(out)]
    assert len(reasons) == 6
    assert "exists already" in reasons[0] and "must match" in reasons[1] and "command" in reasons[2]
    assert "wider than the parent's standard" in reasons[3] and "under the plan root" in reasons[4]
    assert reasons[5].startswith("spawn file line 7")


def test_a_failed_attempt_spawns_nothing():
    clock = StepClock()
    k = Recorded()
    lead = started(enter(k, plan_toml(("S1", [{"id": "lead", "command": CMD}])), clock))[0]
    out = finish(k, lead, clock, exit_code=1, spawns=(SpawnRequest(id="kid", command=("x",)),))
    assert spawned(out) == [] and "lead/kid" not in k.state.nodes


def test_children_survive_a_restart_and_are_neither_lost_nor_rerun():
    clock = StepClock()
    k1 = Recorded()
    src = plan_toml(("S1", [{"id": "lead", "command": CMD}, {"id": "after", "command": CMD}]))
    lead = started(enter(k1, src, clock, run_id="r1"))[0]
    out = finish(k1, lead, clock, spawns=(SpawnRequest(id="a", command=("x",)), SpawnRequest(id="b", command=("y",))))
    kid_a = next(t for t in started(out) if t.unit_id == "lead/a")
    finish(k1, kid_a, clock)  # a completes, b is still running when the kernel dies (no exit recorded)
    k2 = Recorded(k1.log)
    out = enter(k2, src, clock, run_id="r2", pid=2, probes=[ev.PidProbe(run_id="r1", pid=100, alive=False)])
    assert "lead/a" in k2.state.nodes and "lead/b" in k2.state.nodes
    assert set(k2.state.nodes["after"].depends_on) == {"lead", "lead/a", "lead/b"}
    assert [t.unit_id for t in started(out)] == ["lead/b"]  # recovered and retried; a is not run again
    out = finish(k2, started(out)[0], clock)
    assert [t.unit_id for t in started(out)] == ["after"]
