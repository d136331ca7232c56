"""A unit's command finished (``ExecutionFinished``): price its usage, then
run the task's gates if it succeeded, or fail the attempt (its retry budget
applies). A late report of a cancelled turn decides nothing."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import gating, pricing


def on_execution(ctx: Context, obs: ev.ExecutionFinished) -> None:
    turn = ctx.state.in_flight.get(obs.turn_id)
    if turn is None or ctx.state.exited:
        return  # a cancelled turn's late report: nothing to decide
    ok = obs.exit_code == 0 and not obs.timed_out and not obs.error
    action = "timeout" if obs.timed_out else ("error" if obs.error else f"exit:{obs.exit_code}")
    ctx.phase(turn.turn_id, "unit", action, {"duration_ms": obs.duration_ms})
    if pricing.cost_guard_stops(ctx, turn, obs, ok):
        pass  # the cost guard priced the usage and ended the turn
    elif ok:
        gating.start_gates(ctx, turn)  # the task's gates, then the unit's outcome
    else:
        fc: ev.FailureClass = "timeout" if obs.timed_out else "execution"
        if obs.timed_out:
            reason = f"timed out after {obs.duration_ms} ms"
        elif obs.error:
            reason = obs.error
        else:
            last = obs.stderr_tail.strip().splitlines()[-1:] or [""]
            reason = f"exit code {obs.exit_code}" + (f": {last[0][:200]}" if last[0] else "")
        ctx.conclude(turn, success=False, failure_class=fc, reason=reason)
    ctx.advance()
