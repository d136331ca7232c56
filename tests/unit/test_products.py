"""Durable completion (behaviour §13): a unit that declares ``produces`` is
completed only if every product exists and is not blank; otherwise it fails
with class ``artifact``, retried once whatever its ``retries``. Pure kernel
decisions from the recorded ``ExecutionFinished.products``."""

from __future__ import annotations

import pytest
from uok.domain import events as ev
from uok.domain.kernel import Kernel
from uok.domain.plan import PlanError, compile_plan
from uok.domain.plan.products import unmet_products

from tests.helpers import StepClock

PLAN = """
[plan]
id = "p"
[[milestones]]
id = "M1"
  [[milestones.slices]]
  id = "S1"
    [[milestones.slices.tasks]]
    id = "report"
    command = ["true"]
    retries = 3
    produces = ["out/report.md", "out/figures/*.png"]
"""


def run_attempt(k: Kernel, clock, out, products: dict[str, str], exit_code: int = 0):
    [turn] = [d for d in out if isinstance(d, ev.TurnStarted)]
    return k.handle(
        ev.ExecutionFinished(
            run_id="r1",
            at=clock(),
            turn_id=turn.turn_id,
            unit_id=turn.unit_id,
            exit_code=exit_code,
            duration_ms=1,
            products=products,
        )
    )


def enter(k: Kernel, clock):
    return k.handle(ev.KernelEntered(run_id="r1", at=clock(), pid=1, plan_path="p.toml", plan_source=PLAN, workers=1))


def failures(out) -> list[tuple[str, str]]:
    return [
        (d.failure_class, d.reason)
        for d in out
        if isinstance(d, ev.UnitTransitioned) and d.to_state == "failed" and d.unit_id == "report"
    ]


def test_products_are_parsed_as_plan_paths():
    assert compile_plan(PLAN, filename="p.toml").node("report").produces == ("out/report.md", "out/figures/*.png")
    with pytest.raises(PlanError, match="produces path '/abs' is absolute"):
        compile_plan(PLAN.replace('"out/report.md"', '"/abs"'), filename="p.toml")


def test_unmet_products_phrases():
    facts = {"a.md": "present", "b.md": "blank", "c/*.png": "missing"}
    assert unmet_products(["a.md", "b.md", "c/*.png", "d.md"], facts) == (
        "b.md is blank",
        "no file matches c/*.png",
        "d.md is missing",
    )


def test_a_missing_product_fails_as_artifact_and_is_retried_once_only():
    clock = StepClock()
    k = Kernel()
    out = enter(k, clock)
    out = run_attempt(k, clock, out, {"out/report.md": "missing", "out/figures/*.png": "present"})
    assert failures(out) == [("artifact", "declared product out/report.md is missing")]
    assert not any(isinstance(d, ev.GateRequested) for d in out)  # no gates for a unit that produced nothing
    assert [d.attempt for d in out if isinstance(d, ev.TurnStarted)] == [2]  # retried
    out = run_attempt(k, clock, out, {"out/report.md": "blank", "out/figures/*.png": "present"})
    assert failures(out) == [("artifact", "declared product out/report.md is blank")]
    assert not any(isinstance(d, ev.TurnStarted) for d in out)  # once only, though retries = 3
    assert k.state.unit("report").outcome == "failed" and k.state.unit("report").state == "notified"


def test_products_present_complete_the_unit_and_other_failures_keep_the_tasks_retries():
    clock = StepClock()
    k = Kernel()
    out = enter(k, clock)
    for attempt in (1, 2, 3):  # exit code 1: class execution, the task's own retries (3)
        out = run_attempt(k, clock, out, {}, exit_code=1)
        assert [d.attempt for d in out if isinstance(d, ev.TurnStarted)] == [attempt + 1]
    out = run_attempt(k, clock, out, {"out/report.md": "present", "out/figures/*.png": "present"})
    assert k.state.unit("report").outcome == "completed"
