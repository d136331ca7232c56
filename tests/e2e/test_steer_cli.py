"""`uok steer` against a real running `uok run`: pause, resume, cancel, refusals (the kernel's steering rules: tests/unit/test_steering.py)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
from uok.domain import events as ev
from uok.domain.events import SteeringApplied

from tests.conftest import uok
from tests.run_support import (
    assert_turns_closed_once,
    of_type,
    read_events,
    run_id_of,
    start_run,
    task_plan,
    wait_for,
)  # fmt: skip

SLOW = "import time; time.sleep(0.3)"


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
