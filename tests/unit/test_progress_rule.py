"""Progress reports decide a unit's ``progress`` state, and nothing once its turn ended. Pure."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import enter, finish, started


def _report(k: Kernel, turn: ev.TurnStarted, clock, message: str) -> list[ev.Event]:
    return k.handle(
        ev.ProgressReported(run_id=turn.run_id, at=clock(), turn_id=turn.turn_id, unit_id=turn.unit_id, message=message)
    )


def test_reports_move_a_running_unit_to_progress_and_a_late_one_decides_nothing():
    clock, k = StepClock(), Kernel()
    [turn] = started(enter(k, plan_toml(("S1", [{"id": "a", "command": ["true"]}])), clock))
    [move] = _report(k, turn, clock, "half way")
    assert isinstance(move, ev.UnitTransitioned) and (move.from_state, move.to_state) == ("running", "progress")
    assert move.reason == "half way"
    [again] = _report(k, turn, clock, "nearly")
    assert (again.from_state, again.to_state) == ("progress", "progress")
    rec = k.unit("a")
    assert rec is not None and rec.progress_count == 2
    out = finish(k, turn, clock)
    assert any(isinstance(d, ev.UnitTransitioned) and d.to_state == "completed" for d in out)
    assert _report(k, turn, clock, "too late") == []
