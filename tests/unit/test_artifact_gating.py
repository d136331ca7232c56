"""Artifact gating (behaviour §11, the seed's plan-v2 context gate), as pure
kernel decisions: units held with a recorded reason while a required file is
missing, blank or only a draft; released by an observation in the same run
or by the next run's entry; planning-phase tasks exempt."""

from __future__ import annotations

import pytest
from uok.domain import events as ev
from uok.domain.kernel import Kernel
from uok.domain.plan import PlanError, compile_plan
from uok.domain.plan.artifacts import draft_of, hold_reasons, probe_paths

from tests.helpers import StepClock

PLAN = """
[plan]
id = "g"
[[milestones]]
id = "M1"
requires = ["CONTEXT.md"]
  [[milestones.slices]]
  id = "S1"
    [[milestones.slices.tasks]]
    id = "research"
    phase = "planning"
    command = ["true"]
    [[milestones.slices.tasks]]
    id = "build"
    depends_on = []
    command = ["true"]
"""


def enter(k: Kernel, clock, artifacts: dict[str, str], *, run_id: str = "r1", source: str = PLAN, workers: int = 2):
    return k.handle(
        ev.KernelEntered(
            run_id=run_id,
            at=clock(),
            pid=1,
            plan_path="p.toml",
            plan_source=source,
            workers=workers,
            artifacts=artifacts,
        )
    )


def finish(k: Kernel, turn: ev.TurnStarted, clock):
    return k.handle(
        ev.ExecutionFinished(
            run_id=turn.run_id, at=clock(), turn_id=turn.turn_id, unit_id=turn.unit_id, exit_code=0, duration_ms=1
        )
    )


def started(out) -> list[str]:
    return [d.unit_id for d in out if isinstance(d, ev.TurnStarted)]


def held(out) -> dict[str, str]:
    return {d.unit_id: d.reason for d in out if isinstance(d, ev.UnitHeld)}


def test_requires_is_inherited_by_execution_units_not_planning_ones():
    graph = compile_plan(PLAN, filename="p.toml")
    assert graph.node("research").requires == () and graph.node("research").phase == "planning"
    assert graph.node("build").requires == ("CONTEXT.md",)
    assert graph.node("complete-slice:M1/S1").requires == ("CONTEXT.md",)
    default = compile_plan(PLAN.replace('requires = ["CONTEXT.md"]', "requires = true"), filename="p.toml")
    assert default.node("build").requires == ("CONTEXT.md", "RESEARCH.md")
    sliced = PLAN.replace('  id = "S1"\n', '  id = "S1"\n  requires = ["docs/PLAN.md", "CONTEXT.md"]\n')
    assert compile_plan(sliced, filename="p.toml").node("build").requires == ("CONTEXT.md", "docs/PLAN.md")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ('requires = "CONTEXT.md"', "requires must be true or an array of file paths"),
        ('requires = ["../CONTEXT.md"]', "escapes the plan root"),
    ],
)
def test_bad_requires_are_refused(change: str, problem: str):
    with pytest.raises(PlanError, match=problem):
        compile_plan(PLAN.replace('requires = ["CONTEXT.md"]', change), filename="p.toml")
    with pytest.raises(PlanError, match="phase must be one of execution, planning"):
        compile_plan(PLAN.replace('phase = "planning"', 'phase = "plan"'), filename="p.toml")


def test_reasons_follow_the_seed():
    assert draft_of("m/CONTEXT.md") == "m/CONTEXT-DRAFT.md"
    assert probe_paths([("CONTEXT.md",), ("CONTEXT.md", "R.md")]) == (
        "CONTEXT.md",
        "CONTEXT-DRAFT.md",
        "R.md",
        "R-DRAFT.md",
    )
    assert hold_reasons(["CONTEXT.md"], {}) == ("missing CONTEXT.md",)  # never observed: fail closed
    assert hold_reasons(["CONTEXT.md"], {"CONTEXT.md": "missing", "CONTEXT-DRAFT.md": "present"}) == (
        "draft exists but finalized CONTEXT.md is missing",
    )
    assert hold_reasons(["CONTEXT.md"], {"CONTEXT.md": "blank"}) == ("CONTEXT.md is blank",)
    assert hold_reasons(["CONTEXT.md"], {"CONTEXT.md": "present"}) == ()


def test_a_missing_context_holds_execution_while_research_runs_and_an_observation_releases_it():
    clock = StepClock()
    k = Kernel()
    out = enter(k, clock, {"CONTEXT.md": "missing", "CONTEXT-DRAFT.md": "missing"})
    assert started(out) == ["research"]
    assert held(out) == {"build": "held: missing CONTEXT.md"}
    [turn] = [d for d in out if isinstance(d, ev.TurnStarted)]
    out = k.handle(ev.ArtifactsObserved(run_id="r1", at=clock(), facts={"CONTEXT.md": "present"}))
    assert started(out) == ["build"]  # released in the same run, before research even completed
    out = finish(k, turn, clock)
    assert not held(out)


class Recorded(Kernel):
    """A kernel that keeps what it was fed and decided: the log a shell would write."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[ev.Event] = []

    def handle(self, obs):
        out = super().handle(obs)
        self.log += [obs, *out]
        return out


def test_held_is_announced_once_per_reason_and_the_run_exits_error_leaving_it_queued():
    clock = StepClock()
    k = Recorded()
    facts = {"CONTEXT.md": "missing", "CONTEXT-DRAFT.md": "present"}
    out = enter(k, clock, facts, workers=1)
    assert held(out) == {"build": "held: draft exists but finalized CONTEXT.md is missing"}
    [turn] = [d for d in out if isinstance(d, ev.TurnStarted)]
    out = k.handle(ev.ArtifactsObserved(run_id="r1", at=clock(), facts={"CONTEXT.md": "blank"}))
    assert held(out) == {"build": "held: CONTEXT.md is blank"}  # a new reason is announced again
    out = finish(k, turn, clock)
    assert not held(out)  # same reason: not repeated
    [x] = [d for d in out if isinstance(d, ev.KernelExited)]
    assert x.status == "failed" and x.error == "1 unit(s) held for artifacts: CONTEXT.md is blank"
    assert k.state.unit("build").state == "queued"  # not blocked: a later run resumes it
    # the next run (a new kernel folding the log) sees the file at entry and runs what was held
    k2 = Kernel()
    for e in k.log:
        k2.apply(e)
    out = enter(k2, clock, {"CONTEXT.md": "present"}, run_id="r2")
    assert started(out) == ["build"] and not held(out)


def test_units_without_requires_are_never_held():
    clock = StepClock()
    k = Kernel()
    out = enter(k, clock, {}, source=PLAN.replace('requires = ["CONTEXT.md"]\n', ""))
    assert sorted(started(out)) == ["build", "research"] and not held(out)


def test_requires_and_phase_are_not_part_of_a_tasks_fingerprint():
    from uok.domain.plan.fingerprint import fingerprint

    gated_plan = compile_plan(PLAN, filename="p.toml")
    plain = compile_plan(
        PLAN.replace('requires = ["CONTEXT.md"]\n', "").replace('phase = "planning"\n', ""), filename="p.toml"
    )
    for unit in ("research", "build"):
        assert fingerprint(gated_plan.node(unit)) == fingerprint(plain.node(unit))
