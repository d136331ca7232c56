"""What the kernel folds about runs, units and turns.

Runs and units are folded for the whole log (a later run recovers an
earlier one, and retry budgets and dispatch counts survive restarts); the
plan graph, the iteration counter and the turns in flight only for the run
this kernel drives.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.schedule import flags
from uok.domain.kernel.state import KernelState, RunInfo, TurnInfo
from uok.domain.policies.lifecycle import UnitRecord


def fold_entered(st: KernelState, e: ev.KernelEntered) -> None:
    st.runs[e.run_id] = RunInfo(run_id=e.run_id, pid=e.pid, entered_at=e.at, plan_path=e.plan_path, host=e.host)


def fold_leased(st: KernelState, e: ev.PlanLeased) -> None:
    """The plan's last lease epoch: the next run of the plan claims one more."""
    st.leases[e.plan_id] = max(st.leases.get(e.plan_id, 0), e.epoch)


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    run = st.runs.get(e.run_id)
    if run is not None:
        run.plan_id = e.graph.plan_id
    st.plans[e.graph.plan_id] = e.graph
    if e.run_id == st.run_id:
        st.graph = e.graph
        st.nodes = {n.id: n for n in e.graph.nodes}
        st.schedule = None


def fold_exited(st: KernelState, e: ev.KernelExited) -> None:
    run = st.runs.get(e.run_id)
    if run is not None:
        run.status, run.exited_at = e.status, e.at
    if e.run_id == st.run_id:
        st.exited = True


def fold_recovered(st: KernelState, e: ev.RunRecovered) -> None:
    run = st.runs.get(e.recovered_run)
    if run is not None:
        run.status, run.exited_at = "recovered", e.at


def fold_unit(st: KernelState, e: ev.UnitTransitioned) -> None:
    key = (e.plan_id, e.unit_id)
    rec = st.units.get(key)
    if rec is None:
        rec = st.units[key] = UnitRecord(unit_id=e.unit_id, plan_id=e.plan_id)
    sched = st.schedule
    if sched is None or e.plan_id != sched.plan_id:
        rec.apply(e)
        return
    before = flags(rec)
    rec.apply(e)
    sched.moved(e.unit_id, before, flags(rec))  # the driven plan's ready set follows the move


def fold_turn_started(st: KernelState, e: ev.TurnStarted) -> None:
    if e.run_id == st.run_id:
        st.iteration = max(st.iteration, e.iteration)
        st.in_flight[e.turn_id] = TurnInfo(turn_id=e.turn_id, unit_id=e.unit_id, attempt=e.attempt, started_at=e.at)


def fold_turn_finished(st: KernelState, e: ev.TurnFinished) -> None:
    if e.run_id == st.run_id:
        st.in_flight.pop(e.turn_id, None)
