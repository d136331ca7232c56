"""The kernel's rules for agent steps (uok.domain.kernel.rules.agents), as
pure functions of events: usage priced as it streams, a ceiling crossed
mid-turn, the agent's own total settling the turn, its outcome mapped."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import enter, finish, started

FLAGS = {"uok": {"cost_guard": {"per_unit_usd": 0.05}}, "cost_fail_closed": True}


def _agent_turn(clock) -> tuple[Kernel, ev.TurnStarted]:
    k = Kernel()
    out = enter(k, plan_toml(("S1", [{"id": "a", "agent": "claude-code", "prompt": "p"}])), clock, flags=FLAGS)
    (turn,) = started(out)
    return k, turn


def _step(k: Kernel, turn: ev.TurnStarted, clock, seq: int, kind: str, **kw) -> list[ev.Event]:
    return k.handle(
        ev.AgentStep(
            run_id=turn.run_id,
            at=clock(),
            turn_id=turn.turn_id,
            unit_id=turn.unit_id,
            agent="claude-code",
            seq=seq,
            kind=kind,
            **kw,
        )
    )


def _usage(inp: int, out: int) -> ev.AgentUsage:
    return ev.AgentUsage(model="claude-sonnet-4-5", input_tokens=inp, output_tokens=out)


def test_usage_is_priced_as_it_streams_and_the_agents_total_settles_the_turn():
    clock = StepClock()
    k, turn = _agent_turn(clock)
    out = _step(k, turn, clock, 0, "usage", usage=_usage(1000, 100))  # $0.003 + $0.0015
    costs = [d for d in out if isinstance(d, ev.CostRecorded)]
    assert [round(c.cost_usd, 6) for c in costs] == [0.0045]
    assert not [d for d in out if isinstance(d, ev.GateRun)]  # within the ceiling: no verdict mid-turn
    out = _step(k, turn, clock, 1, "result", subtype="success", cost_usd=0.01)
    settle = [d for d in out if isinstance(d, ev.CostRecorded)]
    assert [round(c.cost_usd, 6) for c in settle] == [0.0055]  # 0.0045 + 0.0055 = the reported 0.01
    (verdict,) = [d for d in out if isinstance(d, ev.GateRun)]
    assert verdict.gate_id == "cost-guard" and verdict.outcome == "pass"
    out = finish(k, turn, clock, agent=ev.AgentOutcome(agent="claude-code", subtype="success"))
    assert any(isinstance(d, ev.UnitTransitioned) and d.to_state == "completed" for d in out)


def test_a_step_over_the_ceiling_ends_the_turn_mid_stream_and_later_steps_decide_nothing():
    clock = StepClock()
    k, turn = _agent_turn(clock)
    assert not any(isinstance(d, ev.TurnFinished) for d in _step(k, turn, clock, 0, "usage", usage=_usage(5000, 1000)))
    out = _step(k, turn, clock, 1, "usage", usage=_usage(5000, 1000))  # $0.03 each: over $0.05 now
    (finished,) = [d for d in out if isinstance(d, ev.TurnFinished)]
    assert finished.failure_class == "policy" and "mid-turn" in finished.error
    assert _step(k, turn, clock, 2, "usage", usage=_usage(5000, 1000)) == []  # the turn is over
    assert finish(k, turn, clock, exit_code=143) == []  # its late report too


def test_messages_and_tool_calls_are_the_units_progress():
    clock = StepClock()
    k, turn = _agent_turn(clock)
    out = _step(k, turn, clock, 0, "message", text="Reading\nthe   code")
    out += _step(k, turn, clock, 1, "tool_call", tool="Bash", args='{"command": "ls"}')
    out += _step(k, turn, clock, 2, "thinking", text="hmm")
    reasons = [d.reason for d in out if isinstance(d, ev.UnitTransitioned)]
    assert reasons == ["agent says: Reading the code", 'agent calls Bash: {"command": "ls"}']


def test_an_agents_error_outcome_fails_the_unit_with_its_mapped_class():
    clock = StepClock()
    k, turn = _agent_turn(clock)
    outcome = ev.AgentOutcome(agent="claude-code", subtype="error_max_turns", is_error=True, failure_class="timeout")
    out = finish(k, turn, clock, exit_code=0, agent=outcome)  # exit 0, but the agent says it failed
    (failed,) = [d for d in out if isinstance(d, ev.UnitTransitioned) and d.to_state == "failed"]
    assert failed.failure_class == "timeout" and failed.reason.startswith("claude-code:")


def test_the_agents_total_split_by_model_settles_each_models_spend():
    clock = StepClock()
    k, turn = _agent_turn(clock)
    _step(k, turn, clock, 0, "usage", usage=_usage(1000, 100))  # sonnet, priced $0.0045
    costs = {"claude-sonnet-4-5-20250929": 0.009, "claude-haiku-4-5-20251001": 0.001}
    out = _step(k, turn, clock, 1, "result", subtype="success", cost_usd=0.01, model_costs=costs)
    rows = {d.model: round(d.cost_usd, 6) for d in out if isinstance(d, ev.CostRecorded)}
    assert rows == {"claude-sonnet-4-5": 0.0045, "claude-haiku-4-5": 0.001}  # each model to what the agent says
