"""The driven plan's ready and doomed units, kept from transitions (issue 15
incremental scheduling), equal what a scan of the whole plan finds after
every step, on random plans with random failures, retries and write
conflicts; and the schedule kept step by step equals one built from zero."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from uok.domain import events as ev
from uok.domain.kernel import Kernel, KernelState

from tests.helpers import StepClock, plan_toml

CMD = ["true"]


def scanned(state: KernelState) -> tuple[list[str], list[str], int]:
    """(ready, doomed, not final) by scanning the plan, as dispatch did before."""
    assert state.graph is not None

    def rec(u):
        return state.unit(u)

    def completed(d):
        return rec(d) is not None and rec(d).outcome == "completed"

    def bad(d):
        r = rec(d)
        return d in state.nodes and r is not None and r.state == "notified" and r.outcome != "completed"

    queued = [u for u in state.graph.order if rec(u) is not None and rec(u).state == "queued"]
    ready = [u for u in queued if all(completed(d) for d in state.nodes[u].depends_on if d in state.nodes)]
    doomed = [u for u in queued if any(bad(d) for d in state.nodes[u].depends_on)]
    unsettled = sum(1 for n in state.graph.nodes if not state.is_final(state.unit(n.id)))
    return ready, doomed, unsettled


def kept(state: KernelState) -> tuple[list[str], list[str], int]:
    s = state.scheduled()
    return [s.ids[r] for r in s.ready], [s.ids[r] for r in s.doomed], s.unsettled


def check(k: Kernel) -> None:
    state = k.state
    if state.schedule is None:
        return
    assert kept(state) == scanned(state)
    finals = [state.unit(n.id) for n in state.graph.nodes if state.is_final(state.unit(n.id))]
    done = sum(1 for r in finals if r.outcome == "completed")
    assert k.unit_tally() == (done, len(finals) - done)  # the display's tally, kept too
    rebuilt = msgspec.structs.replace(state, schedule=None).scheduled()
    assert rebuilt == state.schedule  # the counts kept step by step are the counts from zero


@st.composite
def plans(draw):
    tasks = []
    slices = []
    for s in range(draw(st.integers(1, 3))):
        mine = []
        for t in range(draw(st.integers(1, 5))):
            tid = f"s{s}t{t}"
            task = {"id": tid, "command": CMD, "retries": draw(st.integers(0, 1))}
            earlier = [x["id"] for x in tasks]
            if earlier and draw(st.booleans()):
                task["depends_on"] = draw(st.lists(st.sampled_from(earlier), max_size=3, unique=True))
            if draw(st.booleans()):
                task["writes"] = [draw(st.sampled_from(["a.txt", "b.txt"]))]
            tasks.append(task)
            mine.append(task)
        slices.append((f"S{s}", mine))
    return plan_toml(*slices)


@settings(max_examples=60, deadline=None)
@given(source=plans(), workers=st.integers(1, 4), data=st.data())
def test_the_kept_schedule_equals_a_scan_of_the_plan_after_every_step(source, workers, data):
    clock = StepClock()
    k = Kernel()
    out = k.handle(
        ev.KernelEntered(run_id="r", at=clock(), pid=1, plan_path="p.toml", plan_source=source, workers=workers)
    )
    check(k)
    pending = [d for d in out if isinstance(d, ev.TurnStarted)]
    while pending:
        turn = pending.pop(data.draw(st.integers(0, len(pending) - 1)))
        code = data.draw(st.sampled_from([0, 0, 1]))
        out = k.handle(
            ev.ExecutionFinished(
                run_id="r", at=clock(), turn_id=turn.turn_id, unit_id=turn.unit_id, exit_code=code, duration_ms=1
            )
        )
        check(k)
        pending += [d for d in out if isinstance(d, ev.TurnStarted)]
    assert k.exited
    assert k.settled_units() == len(k.state.graph.nodes)


def test_a_failed_dependency_blocks_its_dependents_in_the_graphs_order():
    """b and c wait for a; c also for b: a's failure blocks b, then c (its
    reason names the first dependency that ended badly)."""
    clock = StepClock()
    k = Kernel()
    src = plan_toml(
        (
            "S1",
            [
                {"id": "a", "command": CMD, "retries": 0},
                {"id": "b", "command": CMD, "depends_on": ["a"]},
                {"id": "c", "command": CMD, "depends_on": ["b", "a"]},
            ],
        )
    )
    out = k.handle(ev.KernelEntered(run_id="r", at=clock(), pid=1, plan_path="p.toml", plan_source=src, workers=2))
    [t] = [d for d in out if isinstance(d, ev.TurnStarted)]
    out = k.handle(
        ev.ExecutionFinished(run_id="r", at=clock(), turn_id=t.turn_id, unit_id="a", exit_code=1, duration_ms=1)
    )
    blocked = [(d.unit_id, d.reason) for d in out if isinstance(d, ev.UnitTransitioned) and d.to_state == "blocked"]
    assert blocked[:2] == [("b", "dependency a ended failed"), ("c", "dependency b ended blocked")]
    check(k)


class CountingUnits(dict):
    """The kernel's unit records, counting how many are looked up."""

    lookups = 0

    def get(self, key, default=None):
        CountingUnits.lookups += 1
        return super().get(key, default)

    def __getitem__(self, key):
        CountingUnits.lookups += 1
        return super().__getitem__(key)

    def __contains__(self, key):
        CountingUnits.lookups += 1
        return super().__contains__(key)


def lookups_per_step(tasks: int) -> list[int]:
    clock = StepClock()
    k = Kernel()
    src = plan_toml(("S1", [{"id": f"t{i}", "command": CMD} for i in range(tasks)]))
    out = k.handle(
        ev.KernelEntered(
            run_id="r",
            at=clock(),
            pid=1,
            plan_path="p.toml",
            plan_source=src,
            workers=1,
            flags={"max_iterations": 10 * tasks},
        )
    )
    k.state.units = CountingUnits(k.state.units)
    counts = []
    for _ in range(5):
        [t] = [d for d in out if isinstance(d, ev.TurnStarted)]
        CountingUnits.lookups = 0
        out = k.handle(
            ev.ExecutionFinished(
                run_id="r", at=clock(), turn_id=t.turn_id, unit_id=t.unit_id, exit_code=0, duration_ms=1
            )
        )
        counts.append(CountingUnits.lookups)
    return counts


def test_a_step_looks_up_as_many_units_in_a_plan_of_2000_tasks_as_in_one_of_20():
    """Dispatch does not depend on the plan's size (issue 15): a step of a
    chain reads the same unit records whatever the chain's length (before
    the kept schedule, every step looked up every unit, several times)."""
    small, large = lookups_per_step(20), lookups_per_step(2000)
    assert large == small and max(small) < 100, (small, large)
