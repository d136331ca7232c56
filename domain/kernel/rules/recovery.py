"""Recovery (behaviour §1, §7): a run that entered, never exited and whose pid
the shell found dead is closed as ``recovered``; its in-flight units go
``stale`` and are re-queued within their retry budget."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.outcome import retry_or_finish
from uok.domain.kernel.state import RunInfo
from uok.domain.policies.lifecycle import IN_FLIGHT


def recover(ctx: Context, run: RunInfo) -> None:
    stale = sorted(
        (rec for rec in ctx.state.units.values() if rec.run_id == run.run_id and rec.state in IN_FLIGHT),
        key=lambda r: (r.plan_id, r.unit_id),
    )
    ctx.emit(
        ev.RunRecovered(
            run_id=ctx.run_id,
            at=ctx.at,
            recovered_run=run.run_id,
            pid=run.pid,
            stale_units=tuple(r.unit_id for r in stale),
        )
    )
    for rec in stale:
        reason = f"run {run.run_id} (pid {run.pid}) died while the unit was {rec.state}"
        ctx.transition(rec.unit_id, "stale", plan_id=rec.plan_id, reason=reason)
        retry_or_finish(ctx, rec, reason=reason)
