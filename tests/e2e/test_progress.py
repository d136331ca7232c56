"""Progress (issue 12): a task reports progress with `uok progress` or by
appending to UOK_PROGRESS_FILE; each report is a ProgressReported event and
the unit enters `progress` with it as its reason; a report keeps a task's
heartbeat alive. Real `uok run` subprocesses, a real log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import read_events, task_plan

REPORTS = f"""
import os, sqlite3, subprocess, sys, time
def seen(n):  # wait on the recorded fact, not on the clock
    db = sqlite3.connect(os.environ["UOK_DB"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if db.execute("SELECT count(*) FROM events WHERE topic LIKE 'ProgressReported/%'").fetchone()[0] >= n:
            return
        time.sleep(0.05)
    sys.exit(9)
subprocess.run([{sys.executable!r}, "-m", "uok", "progress", "tests", "written"], check=True)
seen(1)
with open(os.environ["UOK_PROGRESS_FILE"], "a") as f:
    f.write("3/10 files migrated\\n")
seen(2)
"""


def test_a_report_moves_the_unit_to_progress_with_its_message(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("long", REPORTS)], extra="retries = 0\n")
    db = tmp_path / "log.db"
    r = uok("run", str(plan), "--db", str(db), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "progress long: tests written" in " ".join(r.stderr.split())  # the live display says it
    rows = read_events(db)
    assert [e.message for _, e in rows if isinstance(e, ev.ProgressReported)] == [
        "tests written",
        "3/10 files migrated",
    ]
    moves = [(p, e) for p, e in rows if isinstance(e, ev.UnitTransitioned) and e.to_state == "progress"]
    assert [e.reason for _, e in moves] == ["tests written", "3/10 files migrated"]
    assert ": tests written" in uok("events", "--db", str(db)).stdout
    at = moves[0][0]
    past = json.loads(uok("state", "--at", str(at), "--json", "--db", str(db)).stdout)
    unit = past["plans"]["p"]["units"]["long"]
    assert unit["state"] == "progress" and unit["progress"] == 1
    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0 and "no divergence" in replay.stdout, replay.stdout + replay.stderr


def test_uok_progress_outside_a_task_is_refused(tmp_path: Path):
    r = uok("progress", "hello", cwd=tmp_path, env={"UOK_PROGRESS_FILE": ""})
    assert r.returncode == 2 and "inside a running task" in r.stderr


QUIET_BUT_REPORTING = """
import os, time
end = time.monotonic() + 3
while time.monotonic() < end:  # no output at all, only progress reports
    with open(os.environ["UOK_PROGRESS_FILE"], "a") as f:
        f.write("still working\\n")
    time.sleep(0.2)
"""


def test_progress_reports_keep_a_silent_task_alive_past_its_heartbeat(tmp_path: Path):
    """3 s of reports and no output, with a 2 s heartbeat: the task is not stopped."""
    plan = task_plan(tmp_path / "plan.toml", [("quiet", QUIET_BUT_REPORTING)], extra="retries = 0\nheartbeat = 2\n")
    db = tmp_path / "log.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [done] = [e for _, e in read_events(db) if isinstance(e, ev.ExecutionFinished)]
    assert done.exit_code == 0 and done.stop is None and not done.timed_out


WAITS = """
import os, pathlib, time
with open(os.environ["UOK_PROGRESS_FILE"], "a") as f:
    f.write("waiting for go\\n")
while not pathlib.Path("go").exists():
    time.sleep(0.05)
"""


def test_status_watch_follows_a_live_run_until_it_ends(tmp_path: Path):
    import subprocess

    from tests.conftest import ROOT
    from tests.run_support import start_run, wait_for

    plan = task_plan(tmp_path / "plan.toml", [("w", WAITS)])
    db = tmp_path / "log.db"
    run = start_run(plan, db)
    env = {k: v for k, v in __import__("os").environ.items() if k != "UOK_DB"} | {"PYTHONPATH": str(ROOT)}
    # --watch ends as soon as no run is open, so start it once the run has entered
    # (a log that exists may not hold KernelEntered yet on a busy machine)
    wait_for(lambda: db.exists() and _entered(db), what="the run to enter")
    watch = subprocess.Popen(
        [sys.executable, "-m", "uok", "status", "--watch", "0.1", "--json", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    seen = []
    for line in watch.stdout:  # one object per change, as the run goes
        snap = json.loads(line)
        seen.append(snap)
        unit = snap["plans"].get("p", {}).get("units", {}).get("w", {})
        if unit.get("state") == "progress":
            (tmp_path / "go").touch()  # the watcher saw the task's report: let it finish
    assert watch.wait(timeout=60) == 0 and run.wait(timeout=60) == 0
    assert [x["status"] for x in seen[-1]["runs"]] == ["ok"]  # it stopped once no run was open
    assert any(s["plans"].get("p", {}).get("units", {}).get("w", {}).get("reason") == "waiting for go" for s in seen)


def _entered(db: Path) -> bool:
    """Whether the log holds the run's KernelEntered, read-only (the run owns the file)."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            return con.execute("SELECT 1 FROM events WHERE topic LIKE 'KernelEntered/%' LIMIT 1").fetchone() is not None
        finally:
            con.close()
    except sqlite3.Error:  # the schema is still being made by the run's first transaction
        return False
