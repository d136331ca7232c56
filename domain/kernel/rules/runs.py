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
from uok.domain.plan import UnitGraph
from uok.domain.plan.content import PlanContent, PlanContentMissing
from uok.domain.policies.lifecycle import UnitRecord


def fold_entered(st: KernelState, e: ev.KernelEntered) -> None:
    st.runs[e.run_id] = RunInfo(run_id=e.run_id, pid=e.pid, entered_at=e.at, plan_path=e.plan_path, host=e.host)
    if e.plan_sha256 and not e.plan_by_ref:  # the plan's text, held here: later runs may reference it
        held = st.contents.get(e.plan_id)
        if held is None:
            held = st.contents[e.plan_id] = PlanContent()
        held.text_sha256, held.source = e.plan_sha256, e.plan_source
        held.files, held.globs = dict(e.plan_files), dict(e.plan_globs)


def plan_text(st: KernelState, e: ev.KernelEntered) -> tuple[str, dict[str, str], dict[str, tuple[str, ...]]]:
    """The plan text a run entered with: its own, or the one it references."""
    if not e.plan_by_ref:
        return e.plan_source, e.plan_files, e.plan_globs
    held = st.contents.get(e.plan_id)
    if held is None or held.text_sha256 != e.plan_sha256:
        raise PlanContentMissing(
            f"run {e.run_id}: KernelEntered references text {e.plan_sha256[:12]} of plan {e.plan_id!r}, "
            "which no earlier KernelEntered holds"
        )
    return held.source, held.files, held.globs


def compiled_graph(st: KernelState, e: ev.PlanCompiled) -> UnitGraph:
    """The graph a ``PlanCompiled`` holds, or the one it references."""
    if e.graph is not None:
        return e.graph
    held = st.contents.get(e.plan_id)
    if held is None or held.graph is None or held.graph_sha256 != e.graph_sha256:
        raise PlanContentMissing(
            f"run {e.run_id}: PlanCompiled references graph {e.graph_sha256[:12]} of plan {e.plan_id!r}, "
            "which no earlier PlanCompiled holds"
        )
    return held.graph


def fold_leased(st: KernelState, e: ev.PlanLeased) -> None:
    """The plan's last lease epoch: the next run of the plan claims one more."""
    st.leases[e.plan_id] = max(st.leases.get(e.plan_id, 0), e.epoch)


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    graph = compiled_graph(st, e)
    if e.graph is not None and e.graph_sha256:  # held here: later runs may reference it
        held = st.contents.get(e.plan_id)
        if held is None:
            held = st.contents[e.plan_id] = PlanContent()
        held.graph_sha256, held.graph = e.graph_sha256, e.graph
    run = st.runs.get(e.run_id)
    if run is not None:
        run.plan_id = graph.plan_id
    st.plans[graph.plan_id] = graph
    if e.run_id == st.run_id:
        st.graph = graph
        st.nodes = {n.id: n for n in graph.nodes}
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
