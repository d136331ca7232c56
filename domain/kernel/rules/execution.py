"""A unit's command finished (``ExecutionFinished``): price its usage, then
run the task's gates if it succeeded, or fail the attempt (its retry budget
applies; a command that could not start is a ``config`` failure, never
retried). A late report of a cancelled turn decides nothing."""

from __future__ import annotations

from typing import cast, get_args

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import gating, pricing
from uok.domain.plan.products import unmet_products

_CLASSES = frozenset(get_args(ev.FailureClass))


def _missing_products(ctx: Context, unit_id: str, obs: ev.ExecutionFinished) -> tuple[str, ...]:
    node = ctx.state.nodes.get(unit_id)
    if node is None or not node.produces:
        return ()
    return unmet_products(node.produces, obs.products)


def on_products(ctx: Context, obs: ev.ProductsObserved) -> None:
    """A command-less unit's products as the shell saw them (a complete-slice
    verifying its slice, behaviour §13): gates if all exist, else ``artifact``."""
    turn = ctx.state.in_flight.get(obs.turn_id)
    if turn is None or ctx.state.exited:
        return
    node = ctx.state.nodes.get(turn.unit_id)
    missing = unmet_products(node.produces, obs.facts) if node is not None else ()
    if missing:
        ctx.conclude(turn, success=False, failure_class="artifact", reason="declared product " + "; ".join(missing))
    else:
        gating.start_gates(ctx, turn)
    ctx.advance()


def on_execution(ctx: Context, obs: ev.ExecutionFinished) -> None:
    turn = ctx.state.in_flight.get(obs.turn_id)
    if turn is None or ctx.state.exited:
        pricing.record_late_usage(ctx, obs)  # a cancelled turn's late report: its spend, nothing to decide
        return
    agent = obs.agent  # how an agent task's agent said it ended (docs/agents.md)
    ok = obs.exit_code == 0 and not obs.timed_out and not obs.error and not (agent and agent.is_error)
    action = "timeout" if obs.timed_out else ("error" if obs.error else f"exit:{obs.exit_code}")
    ctx.phase(turn.turn_id, "unit", action, {"duration_ms": obs.duration_ms})
    if pricing.cost_guard_stops(ctx, turn, obs, ok):
        pass  # the cost guard priced the usage and ended the turn
    elif obs.cannot_start:  # no such executable: running it again cannot help (issue 12)
        gating.conclude(ctx, turn, "fail", "config", obs.error or "the command cannot start")
    elif ok and (missing := _missing_products(ctx, turn.unit_id, obs)):
        reason = "declared product " + "; ".join(missing)  # durable completion (behaviour §13)
        ctx.conclude(turn, success=False, failure_class="artifact", reason=reason)
    elif ok:
        gating.start_gates(ctx, turn)  # the task's gates, then the unit's outcome
    elif agent is not None and agent.is_error and not obs.timed_out and not obs.error:
        agent_fc = cast("ev.FailureClass", agent.failure_class if agent.failure_class in _CLASSES else "unknown")
        gating.conclude(ctx, turn, "fail", agent_fc, f"{agent.agent}: {agent.reason or agent.subtype}")
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
