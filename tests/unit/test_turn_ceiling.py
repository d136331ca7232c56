"""No global loop cap ends a healthy run (issue 12): the turn ceiling grows
with the plan for runs that record ``turns_per_unit``; runs recorded before
keep the 500-turn cap they were decided with. Pure."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import enter

UNITS = 620  # more turns than the old cap of 500


def _exit(flags: dict) -> ev.KernelExited:
    tasks = [{"id": f"t{i}", "depends_on": []} for i in range(UNITS)]  # no command: each turn ends at once
    out = enter(Kernel(), plan_toml(("S1", tasks)), StepClock(), workers=8, flags=flags)
    [x] = [d for d in out if isinstance(d, ev.KernelExited)]
    return x


def test_a_plan_larger_than_the_old_cap_completes_in_one_run():
    x = _exit({"turns_per_unit": 10, "failed_runs": True})
    assert x.status == "ok" and x.units_completed == UNITS + 1, x  # the tasks and their slice


def test_runs_recorded_before_keep_the_cap_they_were_decided_with():
    x = _exit({})
    assert x.status == "error" and "loop exceeded 500 iterations" in x.error


def test_without_turns_per_unit_max_iterations_alone_is_the_ceiling():
    x = _exit({"turns_per_unit": 0, "max_iterations": 100})
    assert x.status == "error" and "loop exceeded 100 iterations" in x.error
