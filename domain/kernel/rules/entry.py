"""A run enters (``KernelEntered``): recover the dead runs the shell probed,
compile the plan into the log, queue its new units, resume the cancelled
ones, re-queue what should run again (``rules.requeue``), then dispatch."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import requeue, steering, subagents
from uok.domain.kernel.rules.recovery import recover
from uok.domain.plan import compile_plan


def on_entered(ctx: Context, obs: ev.KernelEntered) -> None:
    st = ctx.state
    for probe in obs.probes:
        run = st.runs.get(probe.run_id)
        if run is not None and run.status == "open" and not probe.alive and probe.run_id != obs.run_id:
            recover(ctx, run)
    graph = compile_plan(obs.plan_source, filename=obs.plan_path, files=obs.plan_files, globs=obs.plan_globs)
    previous = st.plans.get(graph.plan_id)  # as the plan's last run compiled it
    prints = requeue.fingerprints(graph) if st.flags.requeue else {}
    ctx.emit(ev.PlanCompiled(run_id=ctx.run_id, at=ctx.at, graph=graph, fingerprints=prints))
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
