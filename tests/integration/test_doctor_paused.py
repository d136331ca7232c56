"""uok doctor reads a plan's pause flag from the log (issue 11 §9: a paused run is paused, not degraded)."""

from __future__ import annotations

from pathlib import Path

from uok.adapters.doctor import _paused_plans
from uok.adapters.eventlog import EventLog
from uok.adapters.stores import open_event_store
from uok.domain import events as ev

from tests.helpers import StepClock


def test_the_pause_flag_is_folded_from_steering_applied(tmp_path: Path):
    clock = StepClock()
    with open_event_store(tmp_path / "events.db", create=True) as store:
        log = EventLog(store)

        def applied(plan: str, paused: bool | None, n: int) -> ev.SteeringApplied:
            return ev.SteeringApplied(
                run_id="r1", at=clock(), message_id=f"m{n}", command="pause", plan_id=plan, paused=paused
            )

        log.append([applied("a", True, 1), applied("b", True, 2), applied("c", None, 3)])
        assert _paused_plans(store) == {"a", "b"}
        log.append([applied("a", False, 4)])
        assert _paused_plans(store) == {"b"}
