"""Re-queueing work that had ended (issue 12), decided when a run enters.

A unit that ended (``notified``) stays ended for the run that ended it. A
later run of the same plan puts it back in the queue when:

* ``retry``: the operator named it, or its outcome, with ``uok retry``
  (``KernelEntered.flags["retry"]``). A new retry epoch: its attempts and
  its dispatch count start over. Only an operator opens an epoch, so the
  runaway cap (``max_dispatches``) still bounds what the loop does alone;
* ``amended``: its definition changed since it ran (its fingerprint,
  :mod:`uok.domain.plan.fingerprint`, differs from the one in the plan's
  previous ``PlanCompiled``), whatever its outcome;
* ``rerun``: it ended ``failed``, ``stale`` or ``blocked`` and the plan is
  run again (by ``uok run``; ``uok retry`` re-queues only what it names). Its attempts start over (a fresh retry budget); its dispatch
  count carries on, so re-running a plan again and again ends in
  ``runaway-recovered``, which only ``uok retry`` re-queues;
* ``dependency``: a unit it depends on was re-queued and it had ended
  (completed on the old result, or blocked because of it).

Each re-queue is a :class:`~uok.domain.events.UnitRequeued` saying why,
then the unit's ``notified → queued`` transition. Units are visited in the
graph's order, so a dependency is decided before what depends on it. A
``blocked`` unit is re-queued only when every dependency it has may still
complete (otherwise dispatch would block it again at once).

Only runs that record the ``requeue`` flag decide any of this: earlier runs
replay with the decisions they recorded.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.plan import UnitGraph, UnitNode
from uok.domain.plan.fingerprint import changed_fields, fingerprint
from uok.domain.policies.lifecycle import UnitRecord

FAILED = frozenset({"failed", "stale", "runaway-recovered"})  # what ``uok retry --failed`` covers
RERUN = frozenset({"failed", "stale", "blocked"})  # what a plain re-run re-queues


def fingerprints(graph: UnitGraph) -> dict[str, str]:
    """Every unit's fingerprint, recorded in ``PlanCompiled``."""
    return {n.id: fingerprint(n) for n in graph.nodes}


def on_entered(ctx: Context, previous: UnitGraph | None) -> None:
    """Re-queue what this run should do again. ``previous``: the plan's graph
    as the last run compiled it (``None`` for a plan never run)."""
    st = ctx.state
    if not st.flags.requeue or st.graph is None:
        return
    retry = st.flags.retry
    before = {n.id: n for n in previous.nodes} if previous is not None else {}
    named = set(retry.units) if retry is not None else set()
    wanted = _states(retry.states) if retry is not None else frozenset()
    requeued: set[str] = set()
    for unit_id in st.graph.order:
        node, rec = st.nodes[unit_id], st.unit(unit_id)
        if rec is None or rec.state != "notified":
            continue
        old = before.get(unit_id)
        if retry is not None and (unit_id in named or (not named and rec.outcome in wanted)):
            if rec.outcome == "blocked" and not _may_complete(ctx, node, requeued):
                continue
            why = retry.reason or "retried by the operator"
            _requeue(ctx, rec, "retry", epoch=True, by=retry.by, reason=why)
        elif old is not None and (was := fingerprint(old)) != (now := fingerprint(node)):
            fields = ", ".join(changed_fields(old, node)) or "definition"
            _requeue(ctx, rec, "amended", old_fingerprint=was, new_fingerprint=now, reason=f"{fields} changed")
        elif dep := next((d for d in node.depends_on if d in requeued), ""):
            if rec.outcome == "blocked" and not _may_complete(ctx, node, requeued):
                continue
            _requeue(ctx, rec, "dependency", dependency=dep, reason=f"dependency {dep} was re-queued")
        elif rec.outcome in RERUN and retry is None:
            if rec.outcome == "blocked" and not _may_complete(ctx, node, requeued):
                continue
            _requeue(ctx, rec, "rerun", reason=f"ended {rec.outcome}; the plan was run again")
        else:
            continue
        requeued.add(unit_id)


def _states(states: tuple[str, ...]) -> frozenset[str]:
    out = set(states)
    if "failed" in out:
        out |= FAILED
    return frozenset(out)


def _may_complete(ctx: Context, node: UnitNode, requeued: set[str]) -> bool:
    """True if every dependency completed, is queued again, or has not ended."""
    st = ctx.state
    for dep in node.depends_on:
        if dep not in st.nodes or dep in requeued:
            continue
        rec = st.unit(dep)
        if rec is not None and st.is_final(rec) and rec.outcome != "completed":
            return False
    return True


def _requeue(
    ctx: Context,
    rec: UnitRecord,
    cause: ev.RequeueCause,
    *,
    epoch: bool = False,
    by: str = "",
    reason: str = "",
    old_fingerprint: str = "",
    new_fingerprint: str = "",
    dependency: str = "",
) -> None:
    ctx.emit(
        ev.UnitRequeued(
            run_id=ctx.run_id,
            at=ctx.at,
            plan_id=rec.plan_id,
            unit_id=rec.unit_id,
            cause=cause,
            was=rec.outcome,
            epoch=epoch,
            old_fingerprint=old_fingerprint,
            new_fingerprint=new_fingerprint,
            dependency=dependency,
            by=by,
            reason=reason,
        )
    )
    ctx.transition(
        rec.unit_id,
        "queued",
        attempt=1,
        dispatches=0 if epoch else rec.dispatches,
        reason=f"{cause}: {reason}",
    )
