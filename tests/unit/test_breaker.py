"""Circuit breaker: every transition, table-driven, with injected times.

The policy is pure (``uok.domain.policies.breaker``): times are arguments, state is a
fold of events. ``Sim`` drives it the way ``uok.domain.kernel.rules.gating`` does: tick at
the call's time, admit, record the request, fold the result's GateRun, then
apply the result's transition, folding every event it emits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from uok.domain.events import BreakerTransitioned, GateRequested, GateRun
from uok.domain.policies import breaker as brk

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Sim:
    def __init__(self, policy: brk.BreakerPolicy | None = None, gate: str = "g"):
        self.policy = policy or brk.BreakerPolicy()
        self.gate = gate
        self.book = brk.BreakerBook()
        self.events: list = []
        self.n = 0

    @property
    def rec(self) -> brk.BreakerRecord:
        return self.book.get(self.gate)

    def fold(self, e) -> None:
        self.events.append(e)
        brk.apply(self.book, e, len(self.events))

    def tick(self, t: float) -> BreakerTransitioned | None:
        moved = brk.tick(self.rec, self.policy, at(t))
        if moved is not None:
            self.fold(moved)
        return moved

    def call(self, t: float) -> tuple[bool, bool, str]:
        """Start a call at t: (admitted, probe, turn_id)."""
        self.tick(t)
        admitted, probe = brk.admit(self.rec, self.policy)
        self.n += 1
        turn = f"r:{self.n}"
        if admitted:
            self.fold(
                GateRequested(
                    at=at(t),
                    turn_id=turn,
                    unit_id="u",
                    gate_id=self.gate,
                    gate_type="x",
                    attempt=1,
                    probe=probe,
                    breaker_state=self.rec.state,
                )
            )
        else:
            self.fold(
                GateRun(
                    at=at(t),
                    turn_id=turn,
                    unit_id="u",
                    gate_id=self.gate,
                    gate_type="x",
                    attempt=1,
                    max_attempts=1,
                    outcome="fail",
                    failure_class="policy",
                    short_circuited=True,
                    breaker_state=self.rec.state,
                )
            )
        return admitted, probe, turn

    def result(self, turn: str, outcome: str, t: float) -> BreakerTransitioned | None:
        self.tick(t)
        was_probe = turn in self.rec.probe_turns
        self.fold(
            GateRun(
                at=at(t),
                turn_id=turn,
                unit_id="u",
                gate_id=self.gate,
                gate_type="x",
                attempt=1,
                max_attempts=1,
                outcome=outcome,
                breaker_state=self.rec.state,
            )
        )
        moved = brk.on_result(self.rec, self.policy, outcome, at(t), was_probe=was_probe)
        if moved is not None:
            self.fold(moved)
        return moved

    def run(self, outcome: str, t: float) -> tuple[bool, BreakerTransitioned | None]:
        admitted, _, turn = self.call(t)
        return admitted, (self.result(turn, outcome, t) if admitted else None)

    def open_it(self, t: float = 0) -> None:
        for i in range(self.policy.failure_threshold):
            self.run("fail", t + i * 0.001)
        assert self.rec.state == "open"


# ------------------------------------------------------------------ closed → open


@pytest.mark.parametrize(
    "outcomes, state, failures",
    [
        (["fail", "fail"], "closed", 2),
        (["fail", "fail", "fail"], "open", 3),
        (["fail", "manual-attention", "fail"], "open", 3),  # manual-attention is a failed final result
        (["fail", "fail", "pass", "fail", "fail"], "closed", 2),  # a pass resets the count
        (["fail", "skip", "fail"], "closed", 2),  # a skip neither counts nor resets
    ],
)
def test_closed_opens_after_n_consecutive_failed_final_results(outcomes, state, failures):
    sim = Sim()
    for i, outcome in enumerate(outcomes):
        sim.run(outcome, i)
    assert sim.rec.state == state
    assert sim.rec.consecutive_failures == failures


def test_retries_and_short_circuits_do_not_count_as_failures():
    sim = Sim()
    for i in range(5):
        sim.fold(
            GateRun(
                at=at(i),
                turn_id=f"t{i}",
                unit_id="u",
                gate_id="g",
                gate_type="x",
                attempt=1,
                max_attempts=3,
                outcome="retry",
                breaker_state="closed",
            )
        )
    assert sim.rec.consecutive_failures == 0
    # a GateRun that consulted no breaker (unknown gate, cost guard) is ignored
    sim.fold(
        GateRun(
            at=at(9),
            turn_id="t9",
            unit_id="u",
            gate_id="g",
            gate_type="unknown",
            attempt=1,
            max_attempts=1,
            outcome="manual-attention",
            failure_class="unknown",
        )
    )
    assert sim.rec.consecutive_failures == 0


def test_the_first_opening_lasts_the_base_time():
    sim = Sim()
    sim.open_it(0)
    [t] = [e for e in sim.events if isinstance(e, BreakerTransitioned)]
    assert (t.from_state, t.to_state, t.streak) == ("closed", "open", 0)
    assert t.open_until == t.at + timedelta(seconds=30)
    assert "3 consecutive failures" in t.reason


# ------------------------------------------------------------------ open


def test_while_open_a_call_short_circuits_and_is_recorded():
    sim = Sim()
    sim.open_it(0)
    admitted, _, _ = sim.call(29)
    assert not admitted
    runs = [e for e in sim.events if isinstance(e, GateRun) and e.short_circuited]
    assert len(runs) == 1 and runs[0].breaker_state == "open"
    assert sim.rec.short_circuits == 1 and sim.rec.state == "open"
    assert "circuit open until" in brk.short_circuit_reason(sim.rec)


@pytest.mark.parametrize("t, state", [(29.9, "open"), (30.002, "half-open"), (500, "half-open")])
def test_open_becomes_half_open_when_its_time_has_passed(t, state):
    sim = Sim()
    sim.open_it(0)
    sim.tick(t)
    assert sim.rec.state == state
    if state == "half-open":
        assert sim.rec.probe_deadline == at(t) + timedelta(seconds=60)


# ------------------------------------------------------------------ half-open


def test_half_open_admits_at_most_k_probes():
    sim = Sim(brk.BreakerPolicy(half_open_max_probes=1))
    sim.open_it(0)
    first = sim.call(31)
    second = sim.call(32)
    assert first[:2] == (True, True)
    assert second[0] is False and sim.rec.probes_in_flight == 1
    assert "probe(s) already in flight" in brk.short_circuit_reason(sim.rec)

    sim2 = Sim(brk.BreakerPolicy(half_open_max_probes=2))
    sim2.open_it(0)
    assert [sim2.call(31 + i)[:2] for i in range(3)] == [(True, True), (True, True), (False, False)]


@pytest.mark.parametrize(
    "outcome, to_state, streak, failures, open_for",
    [
        ("pass", "closed", 0, 0, None),
        ("fail", "open", 1, 4, 60),
        ("manual-attention", "open", 1, 4, 60),
    ],
)
def test_a_probe_result_closes_or_reopens(outcome, to_state, streak, failures, open_for):
    sim = Sim()
    sim.open_it(0)
    _, probe, turn = sim.call(31)
    assert probe
    moved = sim.result(turn, outcome, 32)
    assert moved is not None and (moved.from_state, moved.to_state) == ("half-open", to_state)
    assert (sim.rec.state, sim.rec.streak, sim.rec.consecutive_failures) == (to_state, streak, failures)
    if open_for is not None:
        assert sim.rec.open_until == at(32) + timedelta(seconds=open_for)
    assert sim.rec.probes_in_flight == 0


def test_a_skipped_probe_frees_its_slot_without_a_transition():
    sim = Sim()
    sim.open_it(0)
    _, _, turn = sim.call(31)
    assert sim.result(turn, "skip", 32) is None
    assert sim.rec.state == "half-open" and sim.rec.probes_in_flight == 0
    assert sim.call(33)[:2] == (True, True)


def test_a_result_admitted_before_the_breaker_opened_does_not_move_half_open():
    sim = Sim()
    _, _, early = sim.call(0)  # admitted while closed, still running
    sim.open_it(1)
    sim.tick(40)
    assert sim.rec.state == "half-open"
    assert sim.result(early, "pass", 41) is None
    assert sim.rec.state == "half-open"


@pytest.mark.parametrize(
    "probe_at, check_at, state",
    [
        (31, 90.9, "half-open"),  # 59.9 s after entering half-open at 31: still waiting for the probe
        (31, 91, "open"),  # the half-open time limit (60 s) passed with the probe silent
        (None, 500, "half-open"),  # no probe was ever admitted: nothing to time out
    ],
)
def test_a_hung_probe_reopens_the_breaker_after_the_half_open_limit(probe_at, check_at, state):
    sim = Sim()
    sim.open_it(0)
    sim.tick(31)
    assert sim.rec.state == "half-open"
    if probe_at is not None:
        sim.call(probe_at)
    moved = sim.tick(check_at)
    assert sim.rec.state == state
    if state == "open":
        assert moved.streak == 1 and "did not report within 60 s" in moved.reason
        assert sim.rec.open_until == at(check_at) + timedelta(seconds=60)
        assert sim.rec.probes_in_flight == 0


def test_open_time_doubles_per_reopening_and_the_streak_is_capped():
    policy = brk.BreakerPolicy(open_seconds=30, max_streak=5)
    sim = Sim(policy)
    sim.open_it(0)
    t = 0.0
    durations = []
    for _ in range(8):
        t = (sim.rec.open_until - T0).total_seconds() + 1
        _, _, turn = sim.call(t)
        sim.result(turn, "fail", t)
        durations.append((sim.rec.open_until - at(t)).total_seconds())
    assert durations == [60, 120, 240, 480, 960, 960, 960, 960]
    assert sim.rec.streak == 5
    # and a pass finally closes it and resets the streak
    t = (sim.rec.open_until - T0).total_seconds() + 1
    _, _, turn = sim.call(t)
    sim.result(turn, "pass", t)
    assert (sim.rec.state, sim.rec.streak, sim.rec.consecutive_failures) == ("closed", 0, 0)
    sim.open_it(t + 1)
    assert sim.rec.open_until - sim.events[-1].at == timedelta(seconds=30)


def test_effective_state_and_next_probe_time():
    sim = Sim()
    sim.open_it(0)
    rec = sim.rec
    assert rec.next_probe_at() == rec.open_until
    assert rec.effective_state(at(10)) == "open"
    assert rec.effective_state(at(31)) == "half-open"
    assert brk.GAUGE[rec.state] == 2


def test_the_fold_rebuilds_the_same_book_from_the_events():
    sim = Sim()
    sim.open_it(0)
    _, _, turn = sim.call(31)
    sim.result(turn, "fail", 32)
    rebuilt = brk.BreakerBook()
    for pos, e in enumerate(sim.events, 1):
        brk.apply(rebuilt, e, pos)
    assert rebuilt == sim.book
