"""The cost guard as a kernel rule (behaviour §9): price a turn's reported usage
(``CostRecorded``, one row per model) and judge it (``GateRun``
``cost-guard``). A violation fails the unit with failure class ``policy``
and no retry. The pricing and the limits are :mod:`uok.domain.policies.cost_guard`.

Fail closed (runs that record ``flags["cost_fail_closed"]``; older logs
replay as they ran): usage the guard cannot read, or a model it cannot
price, stops the unit with a reason naming them, unless ``[uok.cost_guard]
unpriced = "warn"``; and the usage of a turn that was cancelled before its
report arrived is still recorded (``CostRecorded``), though nothing is
decided about the turn any more."""

from __future__ import annotations

import msgspec
from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import gating
from uok.domain.kernel.state import TurnInfo
from uok.domain.policies import cost_guard
from uok.domain.policies.costs import usd


def record_costs(ctx: Context, usage: tuple[ev.ModelUsage, ...], turn_id: str, unit_id: str) -> list[ev.CostRecorded]:
    """Price ``usage`` (one row per model) and emit the rows: the recording
    every pricing path shares (a turn's end, usage reported mid-turn, a late
    report, an agent's step)."""
    rows = cost_guard.price(
        ctx.state.cost_table,
        usage,
        run_id=ctx.run_id,
        at=ctx.at,
        turn_id=turn_id,
        unit_id=unit_id,
        plan_id=ctx.state.plan_id,
    )
    for row in rows:
        ctx.emit(row)
    return rows


def stop_when_unpriced(verdict: cost_guard.Verdict, blocked: list[str] | None, ctx: Context) -> cost_guard.Verdict:
    """Fail closed: usage the guard cannot read or price turns a passing
    verdict into a stop, unless ``[uok.cost_guard] unpriced = "warn"``."""
    if blocked and verdict.ok and ctx.state.flags.settings.cost_guard.unpriced == "stop":
        return cost_guard.Verdict(ok=False, rationale="cannot judge the spend: " + "; ".join(blocked))
    return verdict


def record_verdict(
    ctx: Context,
    turn: TurnInfo,
    verdict: cost_guard.Verdict,
    *,
    rationale: str | None = None,
    findings: tuple[ev.Finding, ...] = (),
) -> None:
    """The cost guard's ``GateRun`` for ``turn``: pass, or fail with class ``policy``."""
    gating.record_run(
        ctx,
        turn,
        cost_guard.GATE_ID,
        cost_guard.GATE_TYPE,
        attempt=1,
        max_attempts=1,
        outcome="pass" if verdict.ok else "fail",
        failure_class="none" if verdict.ok else "policy",
        rationale=verdict.rationale if rationale is None else rationale,
        findings=findings,
    )


def cost_guard_stops(ctx: Context, turn: TurnInfo, obs: ev.ExecutionFinished, ok: bool) -> bool:
    """Price the turn's usage and judge it; True if the guard ended the turn."""
    st = ctx.state
    if not obs.usage and turn.turn_id not in st.gates.costs.turn_models:
        return False  # reported nothing, neither while it ran nor at its end
    settings = st.flags.settings
    if not (settings.enabled and settings.cost_guard.enabled):
        return False
    plan_id = st.plan_id
    rows = record_costs(ctx, obs.usage, turn.turn_id, turn.unit_id)
    blocked = cost_guard.problems(obs.usage, rows) if st.flags.cost_fail_closed else []
    verdict = cost_guard.check(
        st.gates.costs,
        st.cost_table,
        settings.cost_guard,
        rows,
        plan_id=plan_id,
        unit_id=turn.unit_id,
        now=ctx.at,
        turn_failed=not ok,
        turn_id=turn.turn_id,
    )
    findings = tuple(
        ev.Finding(
            kind="cost",
            message=f"{r.model}: {r.input_tokens} in, {r.output_tokens} out, "
            f"{usd(r.cost_usd)}" + ("" if r.priced else " (unpriced)"),
        )
        for r in rows
    )
    stopped = stop_when_unpriced(verdict, blocked, ctx)
    if stopped is verdict and blocked:
        verdict = msgspec.structs.replace(verdict, rationale=verdict.rationale + "; " + "; ".join(blocked))
    else:
        verdict = stopped
    record_verdict(ctx, turn, verdict, findings=findings)
    if verdict.ok:
        return False
    gating.conclude(ctx, turn, "fail", "policy", f"cost guard: {verdict.rationale}")
    return True


def record_late_usage(ctx: Context, obs: ev.ExecutionFinished) -> None:
    """The usage of a turn no longer in flight (cancelled, stopped): spent
    all the same, so recorded; nothing is decided about the turn."""
    st = ctx.state
    if not (obs.usage and st.flags.cost_fail_closed and obs.run_id == ctx.run_id and not st.exited):
        return
    record_costs(ctx, obs.usage, obs.turn_id, obs.unit_id)


def on_usage_reported(ctx: Context, obs: ev.UsageReported) -> None:
    """Usage a task reported while it runs: priced now, judged now. Over a
    ceiling (or unreadable / unpriceable, when the run fails closed) the turn
    ends here, failed with class ``policy``; the shell stops the task's
    process because its turn finished while it ran (``uok.adapters.runner``)."""
    st = ctx.state
    turn = st.in_flight.get(obs.turn_id)
    settings = st.flags.settings
    if turn is None or st.exited or not obs.usage or not (settings.enabled and settings.cost_guard.enabled):
        return
    rows = record_costs(ctx, obs.usage, turn.turn_id, turn.unit_id)
    verdict = cost_guard.check(
        st.gates.costs,
        st.cost_table,
        settings.cost_guard,
        rows,
        plan_id=st.plan_id,
        unit_id=turn.unit_id,
        now=ctx.at,
        turn_failed=False,
        turn_id=turn.turn_id,
    )
    blocked = cost_guard.problems(obs.usage, rows) if st.flags.cost_fail_closed else []
    verdict = stop_when_unpriced(verdict, blocked, ctx)
    if verdict.ok and blocked:  # told to warn: say so now, the line will not be seen again
        record_verdict(ctx, turn, verdict, rationale=verdict.rationale + "; " + "; ".join(blocked))
    if verdict.ok:
        return  # within the ceilings: the turn's verdict is recorded when it ends
    record_verdict(ctx, turn, verdict)
    gating.conclude(ctx, turn, "fail", "policy", f"cost guard (mid-turn, the task was stopped): {verdict.rationale}")
    ctx.advance()
