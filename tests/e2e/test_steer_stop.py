"""`uok steer RUN stop` ends a whole run cleanly (issue 11 §9): running units get
the graceful stop, their turns end 'stopped', the run exits 'terminated', it
replays, and the next `uok run` resumes the plan."""

from __future__ import annotations

import time
from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import assert_turns_closed_once, of_type, read_events, run_id_of, start_run, task_plan, wait_for


def test_uok_steer_stop_ends_the_run_and_the_next_run_resumes(tmp_path: Path):
    plan = task_plan(
        tmp_path / "plan.toml", [("long", "import time; time.sleep(30)"), ("after", "pass")], plan_id="stopme"
    )
    db = tmp_path / "s.db"
    proc = start_run(plan, db)
    run_id = run_id_of(db)
    wait_for(lambda: of_type(read_events(db), ev.WriterTokenAcquired), what="the long unit to start")
    started = time.monotonic()
    r = uok("steer", run_id, "stop", "--db", str(db))
    assert r.returncode == 0 and "stopping" in r.stdout, r.stdout + r.stderr
    proc.wait(timeout=20)
    assert time.monotonic() - started < 15  # stopped, not waited for
    events = read_events(db)
    (exited,) = [e for _, e in of_type(events, ev.KernelExited) if e.run_id == run_id]
    assert exited.status == "terminated" and "stopped by steering message" in exited.error
    finished = [e for _, e in of_type(events, ev.TurnFinished) if e.run_id == run_id]
    assert [(e.unit_id, e.status) for e in finished] == [("long", "stopped")]
    assert_turns_closed_once(events, run_id)
    assert uok("replay", "--all", "--db", str(db)).returncode == 0
    assert uok("steer", run_id, "stop", "now", "--db", str(db)).returncode == 2  # stop takes no argument
    (plan.parent / "plan.toml").write_text(plan.read_text().replace("time.sleep(30)", "pass"))
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr  # the stopped unit was re-queued and completes
