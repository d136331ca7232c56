"""A turn's conclusion and a unit's retry budget.

A turn ends with the unit's outcome (``completed → notified``, or
``failed`` and then a retry or ``notified``), a ``PhaseResult`` of phase
``finalize`` (implied by the ``TurnFinished`` in runs with ``dense_turns``
>= 2: :func:`implied_finalize`) and the turn's ``TurnFinished``. A successful turn first
turns the sub-agents its unit asked for into units (``rules.subagents``).
Attempts are counted from the log (behaviour §13b), so a restart never resets
a budget.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.subagents import spawn_children
from uok.domain.kernel.state import KernelState, TurnInfo
from uok.domain.plan import DEFAULT_RETRIES
from uok.domain.policies.gates import retry_budget
from uok.domain.policies.lifecycle import UnitRecord


def conclude(
    ctx: Context, turn: TurnInfo, success: bool, failure_class: ev.FailureClass = "none", reason: str = ""
) -> None:
    """End a turn: the unit's outcome, its retry, the turn-finished record."""
    rec = ctx.state.unit(turn.unit_id)
    assert rec is not None
    if not implied_finalize(ctx.state, turn, success):
        ctx.phase(turn.turn_id, "finalize", "completed" if success else "failed")
    status: ev.TurnStatus
    if success:
        spawn_children(ctx, turn)  # sub-agents the unit asked for
        ctx.transition(turn.unit_id, "completed", turn_id=turn.turn_id)
        ctx.transition(turn.unit_id, "notified")
        status = "completed"
    else:
        ctx.transition(turn.unit_id, "failed", failure_class=failure_class, reason=reason, turn_id=turn.turn_id)
        retried = retry_or_finish(ctx, rec, reason=reason, failure_class=failure_class)
        status = "retry" if retried else "failed"
    ctx.finish_turn(turn, status, failure_class=failure_class, error=reason)


def implied_finalize(st: KernelState, turn: TurnInfo, success: bool) -> bool:
    """Whether this conclusion's finalize phase goes unrecorded: in runs with
    ``dense_turns`` >= 2 (issue 15) the ``TurnFinished`` says it (status
    ``completed``: phase ``completed``; ``retry`` or ``failed``: ``failed``),
    and readers imply it there, unless the unit's sub-agents and sidecar
    requests are still to be added (they may record phases of their own
    after it, so it stays recorded to keep the order)."""
    if st.flags.dense_turns < 2:
        return False
    return not (success and st.subagents.pending.get(turn.turn_id))


def retries_of(st: KernelState, rec: UnitRecord) -> int:
    graph = st.plans.get(rec.plan_id)
    if graph is not None and graph is st.graph:
        node = st.nodes.get(rec.unit_id)  # the driven plan: by id, not a scan of its units (issue 15)
    else:
        node = next((n for n in graph.nodes if n.id == rec.unit_id), None) if graph else None
    return node.retries if node is not None else DEFAULT_RETRIES


def retry_or_finish(ctx: Context, rec: UnitRecord, *, reason: str, failure_class: ev.FailureClass = "none") -> bool:
    """Re-queue a failed/stale unit if its budget allows; else make it final.
    A missing product (class ``artifact``) is retried at most once, as the
    seed's retry matrix says (behaviour §13), whatever the task's retries."""
    retries = retries_of(ctx.state, rec)
    if failure_class == "artifact":
        retries = min(retries, retry_budget("artifact"))
    if rec.retry_budget_remaining(retries) > 0:
        ctx.transition(rec.unit_id, "queued", plan_id=rec.plan_id, attempt=rec.attempt + 1, reason=f"retry: {reason}")
        return True
    ctx.transition(rec.unit_id, "notified", plan_id=rec.plan_id, reason="retry budget exhausted")
    return False
