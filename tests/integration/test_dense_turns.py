"""Fewer events per task (issue 15 item 6): with ``flags["dense_turns"]``
(2 in every run ``uok.bootstrap`` prepares since) the kernel records no
``PhaseResult`` for a turn's dispatch phase (level 1), which its
``TurnStarted`` already says, nor for the finalize phase of an outcome
(level 2), which its ``TurnFinished`` says; runs without the flag (the
committed fixture logs) decide exactly as they did. The readers see the
same either way: the run timeline (the web view, ``uok report``, ``uok
trace``, the OTel spans) and the turn observers (gitops) are told the
implied phases.
"""

from __future__ import annotations

from typing import Any

import pytest
from uok.adapters.observer import TurnHooks
from uok.domain import events as ev
from uok.domain.config import run_flags
from uok.projections.timeline import TimelineFold

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import Recorded, enter, finish, started

SPAWN = (ev.SpawnRequest(error="line 1 is not JSON"),)  # a refused sub-agent: a phase after the outcome's


def _run(flags: dict[str, Any]) -> list[ev.Event]:
    """Tasks that complete, fail once and are retried, fail for good, and
    ask for a sub-agent that is refused, on a fresh kernel."""
    clock, k = StepClock(), Recorded()
    source = plan_toml(
        (
            "S1",
            [
                {"id": "a", "command": ["true"]},
                {"id": "b", "command": ["x"], "retries": 1, "depends_on": ["a"]},
                {"id": "c", "command": ["true"], "depends_on": ["b"]},
                {"id": "d", "command": ["x"], "retries": 0, "depends_on": ["c"]},
            ],
        )
    )
    out = enter(k, source, clock, flags=flags)
    pending = started(out)
    failed_once = False
    while not any(isinstance(d, ev.KernelExited) for d in out):
        turn = pending.pop(0)
        code = 1 if (turn.unit_id == "b" and not failed_once) or turn.unit_id == "d" else 0
        failed_once = failed_once or turn.unit_id == "b"
        spawns = SPAWN if turn.unit_id == "c" else ()
        out = finish(k, turn, clock, exit_code=code, spawns=spawns)
        pending += started(out)
    return k.log


def _phases(log: list[ev.Event], phase: str) -> list[ev.PhaseResult]:
    return [e for e in log if isinstance(e, ev.PhaseResult) and e.phase == phase]


def _without(log: list[ev.Event], dropped: list[ev.PhaseResult]) -> list[ev.Event]:
    ids = {id(e) for e in dropped}
    return [e for e in log if id(e) not in ids]


def test_the_flag_is_read_from_the_entry():
    assert run_flags({"dense_turns": 2}).dense_turns == 2
    assert run_flags({}).dense_turns == 0 and ev.dense_turns({}) == 0
    assert run_flags({"dense_turns": True}).dense_turns == 0  # an integer level, not a switch
    assert ev.dense_turns({"dense_turns": True}) == 0


def test_level_1_records_no_dispatch_phase_and_decides_the_same():
    old, dense = _run({}), _run({"dense_turns": 1})
    turns = [e for e in old if isinstance(e, ev.TurnStarted)]
    assert [t.unit_id for t in turns] == ["a", "b", "b", "c", "d"]  # the slice never completes: d failed
    dispatch = _phases(old, "dispatch")
    assert [(p.turn_id, p.data) for p in dispatch] == [(t.turn_id, {"attempt": t.attempt}) for t in turns]
    assert _phases(dense, "dispatch") == []
    # everything else is the same decision, in the same order (the entries differ by their flags)
    assert _without(old, dispatch)[1:] == dense[1:]


def test_level_2_records_no_outcome_finalize_unless_sub_agents_follow_it():
    old, dense = _run({}), _run({"dense_turns": 2})
    finals = _phases(old, "finalize")
    assert [(p.turn_id, p.action) for p in finals] == [
        ("r1:1", "completed"),
        ("r1:2", "failed"),  # retried
        ("r1:3", "completed"),
        ("r1:4", "completed"),  # c: its refused sub-agent's phase follows
        ("r1:5", "failed"),  # d: out of retries
    ]
    kept = [p for p in finals if p.turn_id == "r1:4"]
    assert [(p.turn_id, p.action) for p in _phases(dense, "finalize")] == [("r1:4", "completed")]
    assert [p.action for p in _phases(dense, "unit") if p.turn_id == "r1:4"] == ["exit:0", "spawn-rejected"]
    implied = [p for p in finals if p not in kept] + _phases(old, "dispatch")
    assert _without(old, implied)[1:] == dense[1:]
    finished = {e.turn_id: e for e in dense if isinstance(e, ev.TurnFinished)}
    assert all(ev.implied_finalize(finished[p.turn_id]) == p.action for p in finals)


def _fold(log: list[ev.Event]) -> TimelineFold:
    fold = TimelineFold("r1")
    for position, e in enumerate(log, 1):
        fold.fold(position, e)
    return fold


@pytest.mark.parametrize("level", [1, 2])
def test_the_timeline_shows_the_same_phases_for_both_forms(level: int):
    old, dense = _fold(_run({})).timeline, _fold(_run({"dense_turns": level})).timeline
    assert dense.dense_turns == level and old.dense_turns == 0
    assert list(old.turns) == list(dense.turns)

    def phases(tl):  # positions differ: an implied phase is at the event that implies it
        return {t: [(p.phase, p.action, p.at, p.data) for p in d.phases] for t, d in tl.turns.items()}

    assert phases(old) == phases(dense)
    first = next(iter(dense.turns.values()))
    assert first.phases[0].phase == "dispatch" and first.phases[0].position == first.started_position


class _Recording:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def on_turn_start(self, turn: ev.TurnStarted) -> None:
        self.calls.append(("start", turn.turn_id))

    def on_phase_result(self, phase: str, action: str, data: dict[str, Any]) -> None:
        self.calls.append(("phase", phase, action, data))

    def on_turn_result(self, result: ev.TurnFinished) -> None:
        self.calls.append(("result", result.turn_id, result.status))


def _observed(log: list[ev.Event]) -> list[tuple]:
    seen = _Recording()
    hooks = TurnHooks(observers=[seen])
    for e in log:
        if not type(e).OBSERVED:  # the runner hands the hooks the kernel's decisions
            hooks.on_decision(e)
    return seen.calls


@pytest.mark.parametrize("level", [1, 2])
def test_observers_are_told_the_same_calls_for_both_forms(level: int):
    old, dense = _observed(_run({})), _observed(_run({"dense_turns": level}))
    assert old == dense
    dispatch = [c for c in dense if c[0] == "phase" and c[1] == "dispatch"]
    assert len(dispatch) == 5 and dispatch[0][3] == {
        "attempt": 1,
        "turn_id": "r1:1",
        "unit_id": "a",
        "unit_type": "execute-task",
    }
    starts = [i for i, c in enumerate(dense) if c[0] == "start"]
    assert all(dense[i + 1][:2] == ("phase", "dispatch") for i in starts)  # right after on_turn_start
