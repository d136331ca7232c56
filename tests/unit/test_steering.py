"""Remote steering: the kernel's rules for pause, resume, cancel and note (`uok steer` against a real
running `uok run`: tests/e2e/test_steer_cli.py)."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.events import SteeringApplied, SteeringReceived
from uok.domain.kernel import Kernel

from tests.helpers import StepClock, plan_toml
from tests.unit.test_kernel import Recorded, enter, finish, started

CMD = ["true"]
CHAIN = plan_toml(("S1", [{"id": "a", "command": CMD}, {"id": "b", "command": CMD}, {"id": "c", "command": CMD}]))


def steer(k: Kernel, clock, command: str, argument: str = "", message_id: str = "m1"):
    return k.handle(
        SteeringReceived(run_id=k.state.run_id, at=clock(), message_id=message_id, command=command, argument=argument)
    )


def applied(out) -> SteeringApplied:
    (a,) = [d for d in out if isinstance(d, SteeringApplied)]
    return a


def test_pause_holds_dispatch_until_resume_and_running_units_finish():
    clock, k = StepClock(), Kernel()
    a = started(enter(k, CHAIN, clock))[0]
    out = steer(k, clock, "pause")
    assert applied(out).paused is True and "1 running unit(s) will finish" in applied(out).outcome
    out = finish(k, a, clock)  # a completes; b is ready but must not start
    assert started(out) == [] and not [d for d in out if isinstance(d, ev.KernelExited)]
    assert applied(steer(k, clock, "pause", message_id="m2")).outcome == "already paused"
    out = steer(k, clock, "resume", message_id="m3")
    assert applied(out).paused is False and [t.unit_id for t in started(out)] == ["b"]


def test_cancel_a_running_unit_ends_its_turn_and_blocks_dependents():
    clock, k = StepClock(), Kernel()
    a = started(enter(k, CHAIN, clock))[0]
    out = steer(k, clock, "cancel", "a")
    cancelled = [d for d in out if isinstance(d, ev.UnitTransitioned) and d.unit_id == "a"]
    assert [d.to_state for d in cancelled] == ["cancelled", "notified"] and cancelled[0].turn_id == a.turn_id
    fin = [d for d in out if isinstance(d, ev.TurnFinished)]
    assert len(fin) == 1 and fin[0].turn_id == a.turn_id and fin[0].status == "stopped"
    blocked = {d.unit_id for d in out if isinstance(d, ev.UnitTransitioned) and d.to_state == "blocked"}
    assert {"b", "c"} <= blocked
    assert next(d for d in out if isinstance(d, ev.KernelExited)).units_failed >= 1
    assert finish(k, a, clock) == []  # the killed process's late report changes nothing


def test_cancel_queued_note_unknown_and_duplicate_messages():
    clock, k = StepClock(), Kernel()
    enter(k, CHAIN, clock)
    out = steer(k, clock, "cancel", "c", message_id="x1")
    assert applied(out).outcome == "cancelled queued unit c"
    assert [d.to_state for d in out if isinstance(d, ev.UnitTransitioned)][:2] == ["cancelled", "notified"]
    assert applied(steer(k, clock, "cancel", "c", message_id="x2")).outcome.startswith("ignored: unit c already ended")
    assert applied(steer(k, clock, "cancel", "zz", message_id="x3")).outcome.startswith("ignored: plan t has no unit")
    assert applied(steer(k, clock, "note", "looks fine", message_id="x4")).outcome == "noted"
    assert applied(steer(k, clock, "reboot", message_id="x5")).outcome.startswith("ignored: unknown command")
    assert applied(steer(k, clock, "note", "again", message_id="x4")).outcome == "ignored: message already applied"


def test_a_paused_plan_stays_paused_in_the_next_run_and_replays_the_same():
    clock = StepClock()
    k1 = Recorded()
    a = started(enter(k1, CHAIN, clock, run_id="r1"))[0]
    steer(k1, clock, "pause")
    finish(k1, a, clock)
    k1.handle(ev.SignalReceived(run_id="r1", at=clock(), signal="SIGTERM"))
    # a new run of the same plan, folded from the first run's log
    k2 = Recorded(k1.log)
    out = enter(k2, CHAIN, clock, run_id="r2", pid=200)
    assert started(out) == []
    note = applied(out)
    assert note.paused is True and "paused by run r1" in note.outcome and "uok steer r2 resume" in note.outcome
    out = steer(k2, clock, "resume", message_id="m9")
    assert [t.unit_id for t in started(out)] == ["b"]
    # replay: a fresh kernel fed the same observations decides the same
    k3 = Recorded(k1.log)
    for e in k2.log:
        if type(e).OBSERVED:
            k3.handle(e)
    assert k3.log == k2.log


# ------------------------------------------------------------------ end to end

# waits (at most 20 s) until the test creates `go`: the test decides when the unit ends


def test_mode_changes_the_modes_of_units_dispatched_after_it_and_is_a_decision():
    from uok.domain.events import ModeChanged

    clock, k = StepClock(), Kernel()
    a = started(enter(k, CHAIN, clock))[0]
    assert k.dispatched_node("a").metadata["model_mode"] == "default"
    out = steer(k, clock, "mode", "model_mode=fast work_mode=review")
    [changed] = [d for d in out if isinstance(d, ModeChanged)]
    assert (changed.previous_model_mode, changed.model_mode, changed.work_mode) == ("default", "fast", "review")
    assert applied(out).outcome.startswith("mode changed")
    assert k.dispatched_node("b").metadata["model_mode"] == "fast"
    assert k.dispatched_node("b").metadata["work_mode"] == "review"
    assert applied(steer(k, clock, "mode", "fast", message_id="m2")).outcome.startswith("unchanged")
    bad = applied(steer(k, clock, "mode", "colour=red", message_id="m3"))
    assert bad.outcome.startswith("ignored: mode takes work_mode=W and model_mode=M")
    out = finish(k, a, clock)
    assert {t.unit_id for t in started(out)} == {"b"}  # dispatched under the new modes (above)
