"""Agent steps (``AgentStep``): recorded as they stream; the cost guard reads
their usage *while the agent runs* (behaviour §9, docs/agents.md).

* A ``usage`` step is priced (one ``CostRecorded``) with the price the
  shell recorded on it (genai-prices, cache tokens at their own rates), else
  the run's cost table (cache tokens as input: the guard errs on the side
  of stopping), and judged against the per-unit and per-window ceilings at
  once. A model nobody can price stops the unit too (fail closed, runs with
  ``cost_fail_closed``; ``[uok.cost_guard] unpriced = "warn"`` only says
  so). Over a ceiling, the turn ends there: a failing ``cost-guard`` ``GateRun``, the unit failed with
  class ``policy`` (not retried), and the shell stops the agent's process
  because its turn finished while it ran (``uok.adapters.runner``).
* A ``result`` step carrying the agent's own total (``cost_usd``)
  reconciles the turn: more ``CostRecorded`` rows hold the difference
  between that total and what the steps were priced at (per model when the
  agent splits its total by model, ``model_costs``), so the turn's
  recorded spend equals what the agent reported, to the cent; then the
  guard judges the turn once more and records its verdict.
* A ``message`` or ``tool_call`` step is the unit's progress: the unit
  enters ``progress`` with it as the reason ("agent says: …", "agent calls
  Bash: …"), as a ``uok progress`` report would.
* Every other step is recorded and decides nothing, as is any step of a
  turn that has already finished (a late line of a stopped agent).
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import gating, pricing
from uok.domain.kernel.state import KernelState, TurnInfo
from uok.domain.policies import cost_guard

_CENT_FRACTION = 1e-9  # a reconciliation smaller than this is rounding, not spend
_HEADLINES = {"message": "says:", "tool_call": "calls"}  # steps that move the unit to progress
_REASON = 200  # characters of a step kept as the unit's progress reason


def fold_step(st: KernelState, e: ev.AgentStep) -> None:
    st.agents.spent.setdefault(e.turn_id, 0.0)
    st.agents.by_model.setdefault(e.turn_id, {})


def fold_cost(st: KernelState, e: ev.CostRecorded) -> None:
    spent = st.agents.spent
    if e.turn_id in spent:
        spent[e.turn_id] += e.cost_usd
        models = st.agents.by_model.setdefault(e.turn_id, {})
        models[e.model] = models.get(e.model, 0.0) + e.cost_usd


def fold_execution(st: KernelState, e: ev.ExecutionFinished) -> None:
    st.agents.spent.pop(e.turn_id, None)  # the turn's process is gone: nothing more to reconcile
    st.agents.by_model.pop(e.turn_id, None)


def on_step(ctx: Context, obs: ev.AgentStep) -> None:
    st = ctx.state
    turn = st.in_flight.get(obs.turn_id)
    if turn is None or st.exited:
        return  # a late step of a turn that ended: recorded, nothing to decide
    if obs.kind in _HEADLINES:
        _progress(ctx, turn, obs)
    settings = st.flags.settings
    if not (settings.enabled and settings.cost_guard.enabled):
        return
    if obs.kind == "usage" and obs.usage is not None:
        usage = _usage(obs)
        rows = _price(ctx, turn, usage)
        blocked = cost_guard.problems((usage,), rows) if st.flags.cost_fail_closed else []
        _judge(ctx, turn, rows, final=False, blocked=blocked)
    elif obs.kind == "result" and obs.cost_usd is not None:
        rows = _reconcile(ctx, turn, obs)
        _judge(ctx, turn, rows, final=True)


def _progress(ctx: Context, turn: TurnInfo, obs: ev.AgentStep) -> None:
    """What the agent says or does is its progress: the unit enters
    ``progress`` with it as the reason, as a ``uok progress`` report would
    (``uok status``, the live display and time travel show it)."""
    rec = ctx.state.unit(turn.unit_id)
    if rec is None or rec.state not in ("running", "progress") or rec.turn_id != obs.turn_id:
        return
    call = f"{obs.tool}: {obs.args}" if obs.args else obs.tool
    what = call if obs.kind == "tool_call" else obs.text
    line = " ".join(what.split())
    reason = f"agent {_HEADLINES[obs.kind]} {line}"
    ctx.transition(turn.unit_id, "progress", reason=reason[:_REASON], turn_id=obs.turn_id)


def _usage(obs: ev.AgentStep) -> ev.ModelUsage:
    u = obs.usage
    assert u is not None
    return ev.ModelUsage(
        model=u.model or "unknown",
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        price=obs.price,
    )


def _price(ctx: Context, turn: TurnInfo, usage: ev.ModelUsage) -> list[ev.CostRecorded]:
    return pricing.record_costs(ctx, (usage,), turn.turn_id, turn.unit_id)


def _reconcile(ctx: Context, turn: TurnInfo, obs: ev.AgentStep) -> list[ev.CostRecorded]:
    """Rows that bring the turn's recorded spend to the agent's total: one per
    model the agent priced (``model_costs``), then any remainder on the
    turn's last model."""
    st = ctx.state
    assert obs.cost_usd is not None
    spent = st.agents.by_model.get(turn.turn_id, {})
    deltas: dict[str, float] = {}
    for model, cost in sorted(obs.model_costs.items()):
        name = _spent_as(st, spent, model)
        deltas[name] = deltas.get(name, 0.0) + cost - spent.get(name, 0.0)
    models = st.gates.costs.turn_models.get(turn.turn_id) or [obs.agent]
    rest = obs.cost_usd - st.agents.spent.get(turn.turn_id, 0.0) - sum(deltas.values())
    deltas[models[-1]] = deltas.get(models[-1], 0.0) + rest
    rows = []
    for model, delta in deltas.items():
        if abs(round(delta, 8)) < _CENT_FRACTION:
            continue
        row = ev.CostRecorded(
            run_id=ctx.run_id,
            at=ctx.at,
            turn_id=turn.turn_id,
            unit_id=turn.unit_id,
            plan_id=st.plan_id,
            model=model,
            input_tokens=0,  # the tokens were recorded with the steps; this row is the agent's own pricing
            output_tokens=0,
            cost_usd=round(delta, 8),
            priced=True,
        )
        ctx.emit(row)
        rows.append(row)
    return rows


def _spent_as(st: KernelState, spent: dict[str, float], model: str) -> str:
    """The name the turn's rows gave ``model`` (the cost table's id, or the
    price table's): itself, its table id, or the recorded name it extends."""
    if model in spent:
        return model
    row = st.cost_table.lookup(model)
    if row is not None and row.id in spent:
        return row.id
    near = [m for m in spent if model.startswith(m) or m.startswith(model)]
    return max(near, key=len) if near else (row.id if row is not None else model)


def _judge(
    ctx: Context, turn: TurnInfo, rows: list[ev.CostRecorded], *, final: bool, blocked: list[str] | None = None
) -> None:
    st = ctx.state
    verdict = cost_guard.check(
        st.gates.costs,
        st.cost_table,
        st.flags.settings.cost_guard,
        rows,
        plan_id=st.plan_id,
        unit_id=turn.unit_id,
        now=ctx.at,
        turn_failed=False,
    )
    verdict = pricing.stop_when_unpriced(verdict, blocked, ctx)
    if verdict.ok and not final:
        return  # mid-turn and within the ceilings: the verdict is recorded once, at the result
    pricing.record_verdict(ctx, turn, verdict)
    if verdict.ok:
        return
    where = "at the agent's result" if final else "mid-turn, the agent was stopped"
    gating.conclude(ctx, turn, "fail", "policy", f"cost guard ({where}): {verdict.rationale}")
    ctx.advance()
