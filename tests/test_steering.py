"""Remote steering: the kernel's rules (pure) and `uok steer` against a real running `uok run`."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
from uok.domain import events as ev
from uok.domain.events import SteeringApplied, SteeringReceived
from uok.domain.kernel import Kernel

from tests.conftest import uok
from tests.helpers import StepClock, plan_toml
from tests.run_support import (
    assert_turns_closed_once,
    of_type,
    read_events,
    run_id_of,
    start_run,
    task_plan,
    wait_for,
)  # fmt: skip
from tests.test_kernel import Recorded, enter, finish, started

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

SLOW = "import time; time.sleep(0.3)"
# waits (at most 20 s) until the test creates `go`: the test decides when the unit ends
GATED = "import os,time; t=time.time()\nwhile not os.path.exists('go') and time.time()-t < 20: time.sleep(0.02)"


def test_uok_steer_pause_stops_dispatch_at_the_next_turn_boundary_until_resume(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("t0", GATED)] + [(f"t{i}", SLOW) for i in range(1, 4)], plan_id="steer")
    db = tmp_path / "s.db"
    proc = start_run(plan, db)
    run_id = run_id_of(db)
    wait_for(lambda: of_type(read_events(db), ev.TurnStarted), what="t0 to start")
    r = uok("steer", run_id, "pause", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    outcome = orjson.loads(r.stdout)
    assert outcome["outcome"] == "paused: no new unit will be dispatched; 1 running unit(s) will finish"
    events = read_events(db)
    ((pause_pos, _),) = [(p, e) for p, e in of_type(events, SteeringApplied) if e.command == "pause"]
    (plan.parent / "go").touch()  # t0 may finish now; nothing new may be dispatched after it
    wait_for(lambda: len(of_type(read_events(db), ev.TurnFinished)) >= 1, what="the running unit to finish")
    time.sleep(1.0)
    events = read_events(db)
    assert [p for p, _ in of_type(events, ev.TurnStarted) if p > pause_pos] == []
    assert proc.poll() is None  # still running, paused
    r = uok("steer", run_id, "resume", "--db", str(db))
    assert r.returncode == 0 and "resumed" in r.stdout
    assert proc.wait(timeout=30) == 0
    events = read_events(db)
    ((resume_pos, _),) = [(p, e) for p, e in of_type(events, SteeringApplied) if e.command == "resume"]
    late = [e.unit_id for p, e in of_type(events, ev.TurnStarted) if p > pause_pos]
    assert late and all(p > resume_pos for p, e in of_type(events, ev.TurnStarted) if p > pause_pos)
    assert_turns_closed_once(events, run_id)
    # every steering message was marked read by the kernel
    assert orjson.loads(uok("bus", "inbox", f"kernel:{run_id}", "--db", str(db), "--json").stdout)["unread"] == 0


def test_uok_steer_cancel_kills_the_running_unit(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("long", "import time; time.sleep(30)"), ("after", "pass")], plan_id="c")
    db = tmp_path / "c.db"
    proc = start_run(plan, db)
    run_id = run_id_of(db)
    wait_for(lambda: of_type(read_events(db), ev.WriterTokenAcquired), what="the long unit to start")
    started_at = time.monotonic()
    r = uok("steer", run_id, "cancel", "long", "--db", str(db))
    assert r.returncode == 0 and "cancelled running unit long" in r.stdout, r.stdout + r.stderr
    assert proc.wait(timeout=20) == 1  # a cancelled unit counts as not completed
    assert time.monotonic() - started_at < 15  # killed, not waited for
    events = read_events(db)
    states = [(e.unit_id, e.to_state) for _, e in of_type(events, ev.UnitTransitioned)]
    assert ("long", "cancelled") in states and ("after", "blocked") in states
    assert_turns_closed_once(events, run_id)


def test_a_run_started_after_a_crash_while_paused_starts_paused(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("t0", GATED), ("t1", "pass")], plan_id="crash")
    db = tmp_path / "k.db"
    proc = start_run(plan, db)
    first = run_id_of(db)
    wait_for(lambda: of_type(read_events(db), ev.TurnStarted), what="t0 to start")
    assert uok("steer", first, "pause", "--db", str(db)).returncode == 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = uok("steer", first, "resume", "--db", str(db))
    assert r.returncode == 2 and "not running" in r.stderr  # the dead run cannot be steered
    proc = start_run(plan, db)
    second = wait_for(
        lambda: [e.run_id for _, e in of_type(read_events(db), ev.KernelEntered) if e.run_id != first],
        what="the second run",
    )[0]
    note = wait_for(lambda: [e for _, e in of_type(read_events(db), SteeringApplied) if e.run_id == second])[0]
    assert note.paused is True and f"uok steer {second} resume" in note.outcome
    time.sleep(0.5)
    assert proc.poll() is None
    assert not [e for _, e in of_type(read_events(db), ev.TurnStarted) if e.run_id == second]
    (plan.parent / "go").touch()  # the re-run of t0 ends at once
    assert uok("steer", second, "resume", "--db", str(db)).returncode == 0
    assert proc.wait(timeout=30) == 0


def test_uok_steer_refuses_unknown_and_finished_runs(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("t0", "pass")], plan_id="f")
    db = tmp_path / "f.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    run_id = run_id_of(db)
    for args, message in [
        ((run_id, "pause"), "has finished"),
        (("r-nope", "pause"), "unknown run"),
        ((run_id, "cancel"), "exactly one UNIT"),
        ((run_id, "fly"), "unknown steering command"),
    ]:
        r = uok("steer", *args, "--db", str(db))
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
