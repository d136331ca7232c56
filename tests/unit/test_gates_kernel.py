"""The gate runner's pure decisions: retry matrix, the flow inside a turn,
unknown gates, breakers across units, memory enrichment, replay."""

from __future__ import annotations

import pytest
from uok.domain import events as ev
from uok.domain.events import BreakerTransitioned, GateEvaluated, GateRequested, GateRun
from uok.domain.kernel import Kernel
from uok.domain.policies.gates import (
    RETRY_MATRIX,
    GateContext,
    GateResult,
    GateValidationError,
    fingerprint,
    judge,
    validate_gate,
)

from tests.helpers import StepClock, plan_toml

CMD = ["true"]
GATES = {"verification": "verification", "security": "security", "lint": "verification"}


# --------------------------------------------------------------------------- retry matrix


@pytest.mark.parametrize(
    "failure_class, budget",
    [
        ("none", 0),
        ("policy", 0),
        ("input", 0),
        ("manual-attention", 0),
        ("unknown", 0),
        ("execution", 1),
        ("artifact", 1),
        ("verification", 1),
        ("closeout", 1),
        ("git", 1),
        ("timeout", 2),
        ("something-new", 0),
    ],
)
def test_retry_matrix(failure_class, budget):
    assert RETRY_MATRIX.get(failure_class, 0) == budget
    outcomes = [judge("fail", failure_class, attempt) for attempt in range(1, budget + 2)]
    # retry while attempt <= budget, then the gate's own outcome; max_attempts = budget + 1
    assert [j.outcome for j in outcomes] == ["retry"] * budget + ["fail"]
    assert [j.retryable for j in outcomes] == [True] * budget + [False]
    assert {j.max_attempts for j in outcomes} == {budget + 1}


@pytest.mark.parametrize(
    "outcome, failure_class, attempt, expected, fc, retryable",
    [
        ("pass", "", 1, "pass", "none", False),
        ("pass", "timeout", 1, "pass", "none", False),  # a pass has no failure class
        ("fail", "", 1, "fail", "unknown", False),  # an unnamed failure is unknown: no retry
        ("fail", "none", 1, "fail", "unknown", False),
        ("fail", "timeout", 1, "retry", "timeout", True),
        ("fail", "timeout", 3, "fail", "timeout", False),
        ("manual-attention", "manual-attention", 1, "manual-attention", "manual-attention", False),
        ("skip", "timeout", 1, "skip", "timeout", False),  # a skip is never retried
        ("fail", "flux-capacitor", 1, "fail", "unknown", False),  # outside the vocabulary: unknown
    ],
)
def test_judge(outcome, failure_class, attempt, expected, fc, retryable):
    j = judge(outcome, failure_class, attempt)
    assert (j.outcome, j.failure_class, j.retryable) == (expected, fc, retryable)


def test_validate_gate_rejects_mistakes():
    class Good:
        id, type = "g", "verification"

        def execute(self, context: GateContext, attempt: int) -> GateResult:
            return GateResult(outcome="pass")

    validate_gate(Good())
    for attrs, message in [
        ({"id": ""}, "id must be a non-empty string"),
        ({"id": 3}, "id must be"),
        ({"type": None}, "type must be a non-empty string"),
        ({"execute": "x"}, "execute must be callable"),
    ]:
        bad = Good()
        for k, v in attrs.items():
            setattr(bad, k, v)
        with pytest.raises(GateValidationError, match=message):
            validate_gate(bad)


def test_fingerprint_ignores_numbers_hex_and_paths():
    a = fingerprint(
        "v", "verification", "exit code 1: 3 failed in /tmp/pytest-12/test_a.py after 0.52s (run 9f3a2b1c77)"
    )
    b = fingerprint("v", "verification", "exit code 2: 17 failed in /home/x/test_b.py after 4.1s (run 0011aabbccdd)")
    assert a == b
    assert a != fingerprint("other", "verification", "exit code 1: 3 failed in /tmp/a.py after 0.52s (run 9f3a2b1c77)")
    assert a != fingerprint("v", "timeout", "exit code 1: 3 failed in /tmp/a.py after 0.52s (run 9f3a2b1c77)")


# --------------------------------------------------------------------------- kernel flow


class Driver:
    """Feeds a kernel the observations a shell would, keeping the log."""

    def __init__(self, source: str, *, gates=None, flags=None, run_id="r1", log=(), workers=1, clock=None):
        self.clock = clock or StepClock()
        self.k = Kernel()
        self.log: list[ev.Event] = list(log)
        for e in self.log:
            self.k.apply(e)
        f = {"gates": dict(GATES if gates is None else gates), **(flags or {})}
        self.run_id = run_id
        self.out = self.feed(
            ev.KernelEntered(
                run_id=run_id, at=self.clock(), pid=1, plan_path="p.toml", plan_source=source, workers=workers, flags=f
            )
        )

    def feed(self, obs):
        out = self.k.handle(obs)
        self.log += [obs, *out]
        self.out = out
        return out

    def started(self):
        return [d for d in self.out if isinstance(d, ev.TurnStarted)]

    def requested(self):
        return [d for d in self.out if isinstance(d, GateRequested)]

    def finish(self, turn, exit_code=0, **kw):
        return self.feed(
            ev.ExecutionFinished(
                run_id=self.run_id,
                at=self.clock(),
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                exit_code=exit_code,
                duration_ms=5,
                **kw,
            )
        )

    def evaluate(self, req: GateRequested, outcome="pass", failure_class="", rationale="", **kw):
        return self.feed(
            GateEvaluated(
                run_id=self.run_id,
                at=self.clock(),
                turn_id=req.turn_id,
                unit_id=req.unit_id,
                gate_id=req.gate_id,
                gate_type=req.gate_type,
                attempt=req.attempt,
                outcome=outcome,
                failure_class=failure_class,
                rationale=rationale,
                **kw,
            )
        )

    def of(self, cls, out=None):
        return [d for d in (self.out if out is None else out) if isinstance(d, cls)]


def unit_states(events, unit_id):
    return [e.to_state for e in events if isinstance(e, ev.UnitTransitioned) and e.unit_id == unit_id]


def test_gates_run_in_order_after_the_command_then_the_unit_completes():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["lint", "verification"]}])))
    d.finish(d.started()[0])
    assert unit_states(d.out, "a") == []  # not concluded yet: gates first
    [req] = d.requested()
    assert (req.gate_id, req.attempt, req.breaker_state) == ("lint", 1, "closed")
    d.evaluate(req, "pass")
    [req2] = d.requested()
    assert req2.gate_id == "verification"
    d.evaluate(req2, "pass")
    assert unit_states(d.out, "a") == ["completed", "notified"]
    runs = [e for e in d.log if isinstance(e, GateRun)]
    assert [(r.gate_id, r.outcome, r.attempt, r.max_attempts) for r in runs] == [
        ("lint", "pass", 1, 1),
        ("verification", "pass", 1, 1),
    ]
    [guard] = [e for e in d.log if isinstance(e, ev.PhaseResult) and e.phase == "guard"]
    assert guard.action == "gates-passed" and guard.data["gates"] == ["lint:pass", "verification:pass"]


def test_a_timeout_retries_then_passes():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    req = d.requested()[0]
    d.evaluate(req, "fail", "timeout", "timed out after 60 s")
    [run] = d.of(GateRun)
    assert (run.outcome, run.failure_class, run.retryable, run.max_attempts) == ("retry", "timeout", True, 3)
    [req2] = d.requested()
    assert req2.attempt == 2
    d.evaluate(req2, "pass")
    assert [r.outcome for r in d.of(GateRun, d.log)] == ["retry", "pass"]
    assert unit_states(d.out, "a") == ["completed", "notified"]


def test_a_gate_failing_past_its_budget_fails_the_unit_which_then_retries():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 1, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    assert [r.outcome for r in d.of(GateRun, d.log)] == ["retry", "fail"]
    [failed] = [e for e in d.out if isinstance(e, ev.UnitTransitioned) and e.to_state == "failed"]
    assert failed.failure_class == "verification" and "gate verification failed: exit code 1" in failed.reason
    [fin] = d.of(ev.TurnFinished)
    assert fin.status == "retry" and fin.failure_class == "verification"
    assert d.started() and d.started()[0].attempt == 2  # the unit's own retry budget


def test_an_unknown_gate_is_manual_attention_the_unit_blocked_and_the_run_continues():
    d = Driver(
        plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["nope"]}]), ("S2", [{"id": "b", "command": CMD}])),
        workers=1,
    )
    [t_a] = d.started()
    d.finish(t_a)
    [run] = d.of(GateRun)
    assert (
        run.gate_type,
        run.outcome,
        run.failure_class,
        run.rationale,
        run.attempt,
        run.max_attempts,
        run.retryable,
    ) == ("unknown", "manual-attention", "unknown", "Gate nope not registered", 1, 1, False)
    assert unit_states(d.out, "a") == ["blocked", "notified"]
    [t_b] = d.started()  # the run goes on
    d.finish(t_b)
    [x] = d.of(ev.KernelExited)
    assert x.status == "ok" and x.units_failed == 2  # a blocked, complete-slice:M1/S1 blocked


def test_a_gate_reporting_manual_attention_blocks_the_unit():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "manual-attention", "manual-attention", "needs a human")
    assert unit_states(d.out, "a") == ["blocked", "notified"]


def test_a_disabled_gate_is_recorded_as_skip():
    flags = {"uok": {"gate": {"verification": {"enabled": False}}}}
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])), flags=flags)
    d.finish(d.started()[0])
    [run] = d.of(GateRun)
    assert run.outcome == "skip" and "uok.gate.verification.enabled" in run.rationale
    assert unit_states(d.out, "a") == ["completed", "notified"]
    assert not d.requested()


def test_gates_of_a_unit_without_command_run_too():
    d = Driver(plan_toml(("S1", [{"id": "a", "gates": ["verification"]}])))
    [req] = d.requested()
    d.evaluate(req, "pass")
    assert unit_states(d.out, "a") == ["completed", "notified"]


def test_a_stale_or_duplicate_evaluation_is_ignored():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    req = d.requested()[0]
    d.evaluate(req, "pass")
    assert d.evaluate(req, "fail", "verification") == []


def test_the_breaker_opens_across_units_and_short_circuits_the_next():
    tasks = [
        {"id": f"t{i}", "command": CMD, "retries": 0, "gates": ["verification"], "depends_on": []} for i in range(4)
    ]
    d = Driver(plan_toml(("S1", tasks)), workers=1)
    for _i in range(3):
        d.finish(d.started()[0])
        d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
        d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    opened = d.of(BreakerTransitioned, d.log)
    assert [(b.from_state, b.to_state) for b in opened] == [("closed", "open")]
    d.finish(d.started()[0])  # t3: its gate never executes
    [run] = d.of(GateRun)
    assert run.short_circuited and run.outcome == "fail" and run.failure_class == "policy"
    assert run.rationale.startswith("circuit open until ") and run.breaker_state == "open"
    assert not d.requested()
    [failed] = [e for e in d.out if isinstance(e, ev.UnitTransitioned) and e.to_state == "failed"]
    assert failed.failure_class == "policy"
    assert unit_states(d.out, "t3")[-1] == "notified"  # policy: not retried


def test_breaker_defaults_come_from_config_per_gate():
    flags = {
        "uok": {"breakers": {"failure_threshold": 5}, "gate": {"verification": {"breaker": {"failure_threshold": 1}}}}
    }
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 0, "gates": ["verification"]}])), flags=flags)
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "fail", "input", "bad input")
    [b] = d.of(BreakerTransitioned)
    assert b.to_state == "open" and b.consecutive_failures == 1


def test_memory_enrichment_attaches_earlier_failures_with_the_same_fingerprint():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 2, "gates": ["verification"]}])))
    for n in (1, 2):
        d.finish(d.started()[0])
        d.evaluate(d.requested()[0], "fail", "input", f"exit code {n}: {n} tests failed in /tmp/run{n}/x.py")
    runs = d.of(GateRun, d.log)
    assert runs[0].memory is None and runs[0].fingerprint
    assert runs[1].fingerprint == runs[0].fingerprint
    m = runs[1].memory
    assert m is not None and m.count == 1 and m.first_seen == runs[0].at and m.runs == ("r1",)


def test_a_signal_during_gates_cancels_and_late_results_are_ignored():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    req = d.requested()[0]
    d.feed(ev.SignalReceived(run_id="r1", at=d.clock(), signal="SIGTERM"))
    assert unit_states(d.out, "a") == ["cancelled"]
    assert d.evaluate(req, "pass") == []


def test_replaying_the_observations_reproduces_every_gate_decision():
    src = plan_toml(
        (
            "S1",
            [
                {
                    "id": f"t{i}",
                    "command": CMD,
                    "retries": 1,
                    "gates": ["verification", "nope"] if i == 2 else ["verification"],
                    "depends_on": [],
                }
                for i in range(5)
            ],
        )
    )
    d = Driver(src, workers=2)
    outcomes = iter(["fail", "fail", "pass", "fail", "pass", "fail", "fail", "fail", "fail"] + ["pass"] * 20)
    pending = list(d.started())
    reqs: list = []
    while pending or reqs:
        if pending:
            out = d.finish(pending.pop(0))
        else:
            r = reqs.pop(0)
            o = next(outcomes)
            out = d.evaluate(r, o, "verification" if o == "fail" else "", "exit code 1")
        pending += [e for e in out if isinstance(e, ev.TurnStarted)]
        reqs += [e for e in out if isinstance(e, GateRequested)]
    assert d.of(ev.KernelExited, d.log)
    # replay: a fresh kernel handling the same observations decides the same
    k = Kernel()
    replayed: list = []
    for e in d.log:
        if type(e).OBSERVED:
            replayed += [e, *k.handle(e)]
    assert replayed == d.log


def test_a_kernel_rebuilt_from_the_log_mid_gate_carries_on():
    """The runner rebuilds its kernel from the log after a failed append; a
    turn waiting for a gate must still be waiting (gate passes are folded)."""
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["lint", "verification"]}])))
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "fail", "timeout", "slow")  # lint attempt 1 -> retry
    [req] = d.requested()
    k = d.k.fresh()
    for e in d.log:
        k.apply(e)
    obs = GateEvaluated(
        run_id="r1",
        at=d.clock(),
        turn_id=req.turn_id,
        unit_id="a",
        gate_id="lint",
        gate_type="verification",
        attempt=2,
        outcome="pass",
    )
    out = k.handle(obs)
    [nxt] = [e for e in out if isinstance(e, GateRequested)]
    assert (nxt.gate_id, nxt.attempt) == ("verification", 1)
    assert out == d.feed(obs)  # the same decisions as the kernel that never restarted


def test_memory_that_cannot_be_computed_is_left_out_and_reported():
    import logging

    from uok.adapters.gates.host import GateHost
    from uok.adapters.gates.registry import GateRegistry
    from uok.domain.config import Settings

    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 2, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "fail", "input", "broken")
    [first] = d.of(GateRun, d.log)
    d.k.state.gates.memory[first.fingerprint].runs = None  # a damaged history
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "fail", "input", "broken")
    [run] = d.of(GateRun)
    assert run.memory is None and run.memory_error.startswith("TypeError")
    assert run.outcome == "fail"  # the result itself stands
    host = GateHost(GateRegistry(), ".", Settings(), clock=d.clock)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("uok.gates").addHandler(handler)
    try:
        host.note(run)
    finally:
        logging.getLogger("uok.gates").removeHandler(handler)
    assert records and "failure memory unavailable" in records[0].getMessage()


def test_the_publish_gate_ends_every_command_units_gates_and_a_failed_publish_fails_the_unit():
    flags = {"publish_gate": "gitops"}
    gates = {**GATES, "gitops": "publish"}
    tasks = [
        {"id": "a", "command": CMD, "retries": 0, "gates": ["verification"]},
        {"id": "b", "command": CMD, "retries": 0, "depends_on": []},
    ]
    d = Driver(plan_toml(("S1", tasks)), gates=gates, flags=flags, workers=1)
    d.finish(d.started()[0])
    d.evaluate(d.requested()[0], "pass")  # verification, then the publish gate
    [pub] = d.requested()
    assert (pub.gate_id, pub.gate_type, pub.breaker_state) == ("gitops", "publish", "")  # no breaker guards it
    d.evaluate(pub, "pass", rationale="committed abc")
    assert unit_states(d.out, "a") == ["completed", "notified"]
    d.finish(d.started()[0])
    [pub_b] = d.requested()  # a unit that lists no gate still publishes
    d.evaluate(pub_b, "fail", "policy", "not committed: 1 secret(s) in the change set")
    assert unit_states(d.out, "b") == ["failed", "notified"]
    [x] = d.of(ev.KernelExited)
    assert (x.units_completed, x.units_failed) == (1, 2)  # b failed, so its slice's completion is blocked
    assert not [r for r in d.of(GateRequested, d.log) if r.unit_id.startswith("complete-slice")]


def test_without_the_flag_no_publish_gate_is_added():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD}])), gates={**GATES, "gitops": "publish"})
    d.finish(d.started()[0])
    assert not d.requested() and unit_states(d.out, "a") == ["completed", "notified"]


def test_an_open_breaker_holds_the_unit_and_the_probe_dispatches_it_again():
    flags = {"breaker_scope": "plan", "uok": {"breakers": {"failure_threshold": 1, "open_seconds": 30}}}
    tasks = [
        {"id": f"t{i}", "command": CMD, "retries": 0, "gates": ["verification"], "depends_on": []} for i in range(2)
    ]
    d = Driver(plan_toml(("S1", tasks), plan_id="p"), flags=flags, workers=1)
    d.finish(d.started()[0])  # t0: its gate fails twice (one retry), the breaker opens
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    [opened] = d.of(BreakerTransitioned)
    assert (opened.to_state, opened.breaker) == ("open", "p/verification")
    [t1] = d.started()
    d.finish(t1)  # t1's gate meets the open breaker: held, not failed
    [held] = d.of(ev.BreakerHeld)
    assert held.unit_id == "t1" and held.breaker == "p/verification" and held.until == opened.open_until
    assert unit_states(d.out, "t1") == ["cancelled", "queued"] and not d.started()
    assert not d.of(ev.KernelExited)  # only a held unit is left: the run waits, it is no deadlock
    [fin] = d.of(ev.TurnFinished)
    assert fin.status == "stopped"
    d.clock.now = opened.open_until  # the shell's timer fires when the breaker said
    d.feed(ev.BreakerDue(run_id="r1", at=d.clock(), gate_id="verification", breaker="p/verification"))
    assert [(b.from_state, b.to_state) for b in d.of(BreakerTransitioned)] == [("open", "half-open")]
    [again] = d.started()
    assert again.unit_id == "t1" and again.attempt == t1.attempt  # its attempt was not spent
    d.finish(again)
    [probe] = d.requested()
    assert probe.probe and probe.breaker == "p/verification"
    d.evaluate(probe, "pass")
    assert unit_states(d.out, "t1") == ["completed", "notified"]
    assert [(b.from_state, b.to_state) for b in d.of(BreakerTransitioned)] == [("half-open", "closed")]


def test_a_unit_held_max_holds_times_fails_as_before():
    flags = {"breaker_scope": "plan", "uok": {"breakers": {"failure_threshold": 1, "max_holds": 1}}}
    tasks = [
        {"id": f"t{i}", "command": CMD, "retries": 0, "gates": ["verification"], "depends_on": []} for i in range(3)
    ]
    d = Driver(plan_toml(("S1", tasks), plan_id="p"), flags=flags, workers=1)
    d.finish(d.started()[0])  # t0 opens the breaker
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.finish(d.started()[0])  # t1 held
    d.finish(d.started()[0])  # t2 held
    held = [e for e in d.log if isinstance(e, ev.BreakerHeld)]
    assert [h.unit_id for h in held] == ["t1", "t2"]
    d.clock.now = held[0].until
    d.feed(ev.BreakerDue(run_id="r1", at=d.clock(), gate_id="verification", breaker="p/verification"))
    d.finish(d.started()[0])  # t1, the probe, fails: the breaker opens again
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.evaluate(d.requested()[0], "fail", "verification", "exit code 1")
    d.finish(d.started()[0])  # t2 meets it open again, held once already: it fails as before
    [failed] = [e for e in d.out if isinstance(e, ev.UnitTransitioned) and e.unit_id == "t2" and e.to_state == "failed"]
    assert failed.failure_class == "policy" and "held 1 time(s) already" in failed.reason
