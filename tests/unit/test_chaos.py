"""The kernel's side of the chaos monkey (uok.domain.kernel.rules.chaos): pure decisions
from a recorded ``ChaosInjected``, reproduced exactly on replay."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.events import ChaosInjected, GateRequested, GateRun
from uok.domain.kernel import Kernel

from tests.helpers import plan_toml
from tests.unit.test_gates_kernel import Driver, unit_states

CMD = ["true"]


def chaos(
    d: Driver,
    fault: str,
    *,
    turn: str = "",
    unit: str = "",
    gate: str = "",
    attempt: int = 1,
    boundary: str = "dispatch",
    sequence: int = 1,
) -> list[ev.Event]:
    return d.feed(
        ChaosInjected(
            run_id=d.run_id,
            at=d.clock(),
            seed=7,
            sequence=sequence,
            fault=fault,
            boundary=boundary,
            turn_id=turn,
            unit_id=unit,
            gate_id=gate,
            attempt=attempt,
            magnitude=12.5 if fault == "latency" else 0.0,
        )
    )


def test_stress_faults_decide_nothing():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD}])))
    [t] = d.started()
    for fault in ("latency", "disk-stress", "memory-stress"):
        assert chaos(d, fault, turn=t.turn_id, unit="a") == []
    assert d.of(ev.KernelExited, d.finish(t))  # the turn goes on as if nothing happened


def test_partial_failure_at_dispatch_fails_the_attempt_and_the_unit_is_retried():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "retries": 2}])))
    [t] = d.started()
    out = chaos(d, "partial-failure", turn=t.turn_id, unit="a")
    assert unit_states(out, "a") == ["failed", "queued", "claimed", "running"]
    failed = next(e for e in out if isinstance(e, ev.UnitTransitioned) and e.to_state == "failed")
    assert failed.failure_class == "execution" and "chaos monkey" in failed.reason and "seed 7" in failed.reason
    [finished] = d.of(ev.TurnFinished, out)
    assert finished.turn_id == t.turn_id and finished.status == "retry" and finished.failure_class == "execution"
    [retry] = d.of(ev.TurnStarted, out)
    assert retry.attempt == 2 and retry.turn_id != t.turn_id
    assert d.finish(t) == []  # the failed attempt's late report decides nothing
    assert d.of(ev.KernelExited, d.finish(retry))


def test_partial_failure_at_finalize_fails_an_attempt_that_succeeded():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD}])))
    [t] = d.started()
    out = chaos(d, "partial-failure", turn=t.turn_id, unit="a", boundary="finalize")
    assert "failed" in unit_states(out, "a")
    assert d.finish(t) == []  # exit 0, but the attempt was already failed


def test_a_fault_for_a_turn_no_longer_in_flight_decides_nothing():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "b", "command": CMD}])))
    [t] = d.started()
    d.finish(t)
    assert chaos(d, "partial-failure", turn=t.turn_id, unit="a") == []
    assert chaos(d, "partial-failure", turn="r1:99", unit="a") == []


def test_partial_failure_of_a_gate_attempt_is_judged_like_a_failed_attempt():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}])))
    d.finish(d.started()[0])
    [req] = d.requested()
    assert (
        chaos(d, "partial-failure", turn=req.turn_id, unit="a", gate="verification", attempt=2, boundary="gate") == []
    )
    out = chaos(d, "partial-failure", turn=req.turn_id, unit="a", gate="verification", attempt=1, boundary="gate")
    [run] = d.of(GateRun, out)
    assert (run.outcome, run.failure_class, run.attempt) == (
        "retry",
        "execution",
        1,
    ) and "chaos monkey" in run.rationale
    [again] = d.of(GateRequested, out)
    assert again.attempt == 2
    out = d.evaluate(again, "pass")
    assert "completed" in unit_states(out, "a")


def test_a_chaotic_run_replays_to_the_same_decisions():
    d = Driver(plan_toml(("S1", [{"id": "a", "command": CMD, "gates": ["verification"]}, {"id": "b", "command": CMD}])))
    t = d.started()[0]
    chaos(d, "partial-failure", turn=t.turn_id, unit="a")
    t2 = d.started()[0]
    chaos(d, "latency", turn=t2.turn_id, unit="a", sequence=2)
    d.finish(t2)
    req = d.requested()[0]
    chaos(d, "partial-failure", turn=req.turn_id, unit="a", gate="verification", attempt=1, boundary="gate", sequence=3)
    d.evaluate(d.requested()[0], "pass")
    d.finish(d.started()[0])
    assert d.of(ev.KernelExited)
    k, i, replayed = Kernel(), 0, 0
    while i < len(d.log):
        obs = d.log[i]
        j = i + 1
        while j < len(d.log) and not type(d.log[j]).OBSERVED:
            j += 1
        assert k.handle(obs) == d.log[i + 1 : j]
        replayed += isinstance(obs, ChaosInjected)
        i = j
    assert replayed == 3
