"""The cost table and the cost guard: pricing, ceilings, the failure pattern."""

from __future__ import annotations

from datetime import timedelta

import pytest
from uok.domain import events as ev
from uok.domain.events import CostRecorded, GateRun
from uok.domain.kernel import Kernel
from uok.domain.policies.costs import BUNDLED_COST_TABLE, CostTable, CostTableError

from tests.helpers import StepClock, plan_toml

CMD = ["true"]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    "model, row",
    [
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("CLAUDE-SONNET-4-6", "claude-sonnet-4-6"),
        ("claude-sonnet-4-6-20260301", "claude-sonnet-4-6"),  # prefix (dated snapshot)
        ("anthropic/claude-haiku-4-5", "claude-haiku-4-5"),  # provider prefix
        ("openai:gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # longest prefix wins over gpt-4o
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("sonnet", "claude-sonnet-4-6"),  # alias
        ("gpt-4oz", None),  # a prefix must end at a separator
        ("llama-3-70b", None),
    ],
)
def test_lookup_exact_then_alias_then_prefix(model, row):
    found = CostTable().lookup(model)
    assert (found.id if found else None) == row


def test_spec_rows_are_in_the_bundled_table():
    t = CostTable()
    for model, inp, out in [
        ("claude-opus-4-6", 0.005, 0.025),
        ("claude-opus-4-7", 0.005, 0.025),
        ("claude-sonnet-4-6", 0.003, 0.015),
        ("claude-haiku-4-5", 0.001, 0.005),
        ("gpt-4o", 0.0025, 0.01),
        ("gpt-4o-mini", 0.00015, 0.0006),
        ("gpt-4.1", 0.002, 0.008),
        ("gpt-4.1-mini", 0.0004, 0.0016),
    ]:
        row = t.lookup(model)
        assert (row.input_per_1k, row.output_per_1k) == (inp, out)
        assert row.context_window > 0 and row.provider
    assert len(BUNDLED_COST_TABLE) > 8
    assert t.lookup("claude-opus-4-6").cost(10_000, 2_000) == pytest.approx(0.05 + 0.05)


@pytest.mark.parametrize(
    "model, cheaper",
    [
        ("claude-opus-4-6", "claude-sonnet-4-6"),  # the next tier down, not the cheapest
        ("claude-opus-4-1", "claude-opus-4-7"),
        ("claude-sonnet-4-6", None),  # haiku's 200K window is smaller than sonnet 4.6's 1M
        ("claude-sonnet-4-5", "claude-haiku-4-5"),
        ("gpt-4.1", "gpt-4.1-mini"),  # not gpt-4o-mini: its 128K window is smaller than 1M
        ("gpt-4o", "gpt-4.1"),  # same family: not o3
        ("claude-haiku-4-5", None),  # nothing cheaper at anthropic
    ],
)
def test_a_cheaper_alternative_has_the_same_provider_and_a_context_window_as_large(model, cheaper):
    t = CostTable()
    alt = t.cheaper_alternative(model)
    assert (alt.id if alt else None) == cheaper
    if alt:
        row = t.lookup(model)
        assert alt.provider == row.provider and alt.context_window >= row.context_window


def test_overrides_replace_and_add_rows_and_reject_bad_ones():
    t = CostTable.with_overrides(
        [
            {"id": "gpt-4o", "input_per_1k": 0.001},
            {"id": "local-llm", "provider": "local", "input_per_1k": 0, "output_per_1k": 0},
        ]
    )
    assert t.lookup("gpt-4o").input_per_1k == 0.001 and t.lookup("gpt-4o").output_per_1k == 0.01
    assert t.lookup("local-llm").provider == "local"
    with pytest.raises(CostTableError, match="row 1"):
        CostTable.with_overrides([{"id": "x", "provider": "p", "input_per_1k": "cheap", "output_per_1k": 1}])
    with pytest.raises(CostTableError, match=">= 0"):
        CostTable.with_overrides([{"id": "x", "provider": "p", "input_per_1k": -1, "output_per_1k": 1}])


# --------------------------------------------------------------------------- the guard in the kernel


class Run:
    def __init__(self, source: str, *, flags=None, clock=None, log=(), run_id="r1"):
        self.clock = clock or StepClock()
        self.k = Kernel()
        self.log = list(log)
        for e in self.log:
            self.k.apply(e)
        self.run_id = run_id
        self.out = self.feed(
            ev.KernelEntered(
                run_id=run_id,
                at=self.clock(),
                pid=1,
                plan_path="p.toml",
                plan_source=source,
                workers=1,
                flags={"gates": {}, **(flags or {})},
            )
        )

    def feed(self, obs):
        self.out = self.k.handle(obs)
        self.log += [obs, *self.out]
        return self.out

    def finish(self, usage, exit_code=0):
        [t] = [d for d in self.out if isinstance(d, ev.TurnStarted)]
        return self.feed(
            ev.ExecutionFinished(
                run_id=self.run_id,
                at=self.clock(),
                turn_id=t.turn_id,
                unit_id=t.unit_id,
                exit_code=exit_code,
                duration_ms=5,
                usage=tuple(usage),
            )
        )

    def of(self, cls):
        return [d for d in self.out if isinstance(d, cls)]


def U(model, i, o):
    return ev.ModelUsage(model=model, input_tokens=i, output_tokens=o)


def test_usage_over_the_per_unit_ceiling_stops_the_unit_and_names_a_cheaper_model():
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 3}])))
    r.finish([U("claude-opus-4-6", 300_000, 40_000), U("claude-haiku-4-5", 1000, 100)])  # $2.50 + $0.0012
    costs = r.of(CostRecorded)
    assert [(c.model, c.priced) for c in costs] == [("claude-opus-4-6", True), ("claude-haiku-4-5", True)]
    assert costs[0].cost_usd == pytest.approx(2.5) and costs[0].plan_id == "t"
    [g] = r.of(GateRun)
    assert (g.gate_id, g.outcome, g.failure_class, g.max_attempts) == ("cost-guard", "fail", "policy", 1)
    assert "over the per-unit ceiling of $2.00" in g.rationale and "consider claude-sonnet-4-6" in g.rationale
    states = [d.to_state for d in r.out if isinstance(d, ev.UnitTransitioned) and d.unit_id == "a"]
    assert states == ["failed", "notified"]  # policy: no retry despite retries = 3
    [f] = [d for d in r.out if isinstance(d, ev.UnitTransitioned) and d.to_state == "failed"]
    assert f.failure_class == "policy" and f.reason.startswith("cost guard:")


def test_usage_under_the_ceilings_passes_and_is_recorded():
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD}])))
    r.finish([U("claude-sonnet-4-6", 10_000, 1_000), U("mystery-model", 5, 5)])
    [g] = r.of(GateRun)
    assert g.outcome == "pass" and "unpriced" in g.rationale and "mystery-model" in g.rationale
    assert [c.priced for c in r.of(CostRecorded)] == [True, False]
    assert [d.to_state for d in r.out if isinstance(d, ev.UnitTransitioned) and d.unit_id == "a"] == [
        "completed",
        "notified",
    ]


def test_the_per_unit_ceiling_counts_every_attempt_of_the_unit():
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 3}])))
    r.finish([U("claude-sonnet-4-6", 400_000, 0)], exit_code=1)  # $1.20, fails -> retried
    [g] = r.of(GateRun)
    assert g.outcome == "pass"
    r.finish([U("claude-sonnet-4-6", 400_000, 0)])  # $2.40 in all for the unit
    [g] = r.of(GateRun)
    assert g.outcome == "fail" and "unit a has spent $2.40" in g.rationale


def test_the_rolling_window_ceiling_counts_only_the_last_hour():
    src = plan_toml(("S1", [{"id": f"t{i}", "command": CMD, "depends_on": []} for i in range(4)]))
    flags = {"uok": {"cost_guard": {"per_unit_usd": 10.0, "per_hour_usd": 5.0}}}
    clock = StepClock(step=60 * 20)  # 20 minutes per observation
    r = Run(src, flags=flags, clock=clock)
    usage = [U("claude-sonnet-4-6", 1_000_000, 0)]  # $3.00 per turn
    r.finish(usage)
    assert r.of(GateRun)[0].outcome == "pass"
    r.finish(usage)  # 20 min later: $6 in the last hour
    [g] = r.of(GateRun)
    assert g.outcome == "fail" and "spend in the last 1 h is $6.00, over the ceiling of $5.00" in g.rationale
    # turn 3 would be blocked too; but after a long pause the window has moved on
    clock.now += timedelta(hours=2)
    r.finish(usage)
    assert r.of(GateRun)[0].outcome == "pass"


def test_repeated_failures_on_a_high_tier_model_are_stopped():
    src = plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 5}]))
    r = Run(src)
    small = [U("claude-opus-4-6", 1000, 100)]
    for _ in range(2):
        r.finish(small, exit_code=1)
        assert r.of(GateRun)[0].outcome == "pass"  # failures 1 and 2: retried normally
    r.finish(small, exit_code=1)
    [g] = r.of(GateRun)
    assert g.outcome == "fail" and "3 failed turns on high-tier model claude-opus-4-6" in g.rationale
    assert "consider claude-sonnet-4-6" in g.rationale
    assert [d.to_state for d in r.out if isinstance(d, ev.UnitTransitioned) and d.unit_id == "a"] == [
        "failed",
        "notified",
    ]


def test_failures_on_a_model_that_is_not_high_tier_are_left_to_the_retry_budget():
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 5}])))
    for _ in range(4):
        r.finish([U("claude-sonnet-4-6", 1000, 100)], exit_code=1)
        assert r.of(GateRun)[0].outcome == "pass"


def test_the_guard_can_be_switched_off_and_turns_without_usage_are_not_priced():
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD}])), flags={"uok": {"cost_guard": {"enabled": False}}})
    r.finish([U("claude-opus-4-6", 10_000_000, 0)])
    assert not r.of(CostRecorded) and not r.of(GateRun)
    r2 = Run(plan_toml(("S1", [{"id": "a", "command": CMD}])))
    r2.finish([])
    assert not r2.of(CostRecorded) and not r2.of(GateRun)


def test_a_cost_table_override_in_the_flags_is_used():
    flags = {"uok": {"cost_guard": {"table_rows": [{"id": "claude-sonnet-4-6", "input_per_1k": 1.0}]}}}
    r = Run(plan_toml(("S1", [{"id": "a", "command": CMD}])), flags=flags)
    r.finish([U("claude-sonnet-4-6", 3000, 0)])
    assert r.of(CostRecorded)[0].cost_usd == pytest.approx(3.0)
    assert r.of(GateRun)[0].outcome == "fail"


# --------------------------------------------------------------------------- end to end


def test_the_usage_of_a_cancelled_turn_is_still_recorded_and_decides_nothing():
    for closed, recorded in ((True, 1), (False, 0)):  # older logs (no flag) replay as they ran
        tasks = [
            {"id": "a", "command": ["true"]},
            {"id": "b", "command": ["true"], "depends_on": []},
        ]  # b keeps the run going
        r = Run(plan_toml(("S1", tasks)), flags={"cost_fail_closed": closed})
        [t] = r.of(ev.TurnStarted)
        r.feed(ev.SteeringReceived(run_id="r1", at=r.clock(), message_id="m1", command="cancel", argument="a"))
        assert [d for d in r.out if isinstance(d, ev.UnitTransitioned) and d.to_state == "cancelled"]
        r.out = [t]
        out = r.finish([U("claude-opus-4-6", 100_000, 10_000)], exit_code=-15)
        assert not r.k.exited and [type(d) for d in out] == [ev.CostRecorded] * recorded
        if recorded:
            assert out[0].cost_usd == pytest.approx(0.75) and out[0].turn_id == t.turn_id


def test_unpriceable_usage_stops_the_unit_only_in_runs_that_fail_closed():
    source = plan_toml(("S1", [{"id": "a", "command": ["true"], "retries": 0}]))
    for closed, outcome in ((True, "fail"), (False, "pass")):
        r = Run(source, flags={"cost_fail_closed": closed})
        r.finish([U("mystery-9000", 10, 5), ev.ModelUsage("", error="usage line 2: not JSON: {oops")])
        [g] = r.of(GateRun)
        assert g.outcome == outcome
        if closed:
            assert "no price for model 'mystery-9000'" in g.rationale and "usage line 2: not JSON" in g.rationale
