"""A run enters (``KernelEntered``): recover the dead runs the shell probed,
compile the plan into the log, queue its new units, resume the cancelled
ones, re-queue what should run again (``rules.requeue``), then dispatch."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import requeue, steering, subagents
from uok.domain.kernel.rules.recovery import recover
from uok.domain.kernel.rules.runs import plan_text
from uok.domain.kernel.state import KernelState
from uok.domain.plan import UnitGraph, compile_plan
from uok.domain.plan.content import graph_sha256


def on_entered(ctx: Context, obs: ev.KernelEntered) -> None:
    st = ctx.state
    for probe in obs.probes:
        run = st.runs.get(probe.run_id)
        if run is not None and run.status == "open" and not probe.alive and probe.run_id != obs.run_id:
            recover(ctx, run)
    source, files, globs = plan_text(st, obs)  # its own, or the text an earlier run holds
    graph = compile_plan(source, filename=obs.plan_path, files=files, globs=globs)
    previous = st.plans.get(graph.plan_id)  # as the plan's last run compiled it
    prints = requeue.fingerprints(graph) if st.flags.requeue else {}
    ctx.emit(compiled(st, obs, graph, prints))
    for node in graph.nodes:
        rec = st.unit(node.id)
        if rec is None:
            ctx.transition(node.id, "queued", attempt=1, dispatches=0, reason="planned")
        elif rec.state == "cancelled":
            ctx.transition(node.id, "queued", reason="resumed after cancellation")
    requeue.on_entered(ctx, previous)  # failed, blocked, amended or retried units run again
    subagents.requeue_cancelled_children(ctx)  # children a signal left cancelled
    steering.on_entered(ctx)  # a paused plan starts paused, and says so
    ctx.advance()


def compiled(st: KernelState, obs: ev.KernelEntered, graph: UnitGraph, prints: dict[str, str]) -> ev.PlanCompiled:
    """The run's ``PlanCompiled``. A run that addresses its plan's content
    (its entry records ``plan_sha256``) names the graph's hash and holds the
    graph only if no earlier ``PlanCompiled`` of the plan holds the same one
    (uok.domain.plan.content); older runs always held it, with no hash."""
    if not obs.plan_sha256:
        return ev.PlanCompiled(run_id=obs.run_id, at=obs.at, plan_id=graph.plan_id, graph=graph, fingerprints=prints)
    sha = graph_sha256(graph)
    held = st.contents.get(graph.plan_id)
    if held is not None and held.graph is not None and held.graph_sha256 == sha:
        return ev.PlanCompiled(run_id=obs.run_id, at=obs.at, plan_id=graph.plan_id, graph_sha256=sha)
    return ev.PlanCompiled(
        run_id=obs.run_id, at=obs.at, plan_id=graph.plan_id, graph=graph, graph_sha256=sha, fingerprints=prints
    )
