"""Graceful stop: a timeout, a cancel and Ctrl-C send SIGTERM to the task's
process group, wait its grace period, then SIGKILL; the turn records which.
Ctrl-C exits 130. Real `uok run` subprocesses, real logs."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from tests.conftest import json_lines, uok
from tests.run_support import run_id_of, start_run, wait_for

SAVER = """
import os, signal, sys, time
def saved(*_):
    open({saved!r}, "w").write("state saved")
    sys.exit(3)
signal.signal(signal.SIGTERM, saved)
open({started!r}, "w").write(str(os.getpid()))
while True:
    time.sleep(0.05)
"""

STUBBORN = """
import os, signal, time
signal.signal(signal.SIGTERM, lambda *_: open({saved!r}, "a").write("ignored SIGTERM\\n"))
open({started!r}, "w").write(str(os.getpid()))
while True:
    time.sleep(0.05)
"""


def _plan(tmp_path: Path, src: str, **task) -> Path:
    saved, started = tmp_path / "saved", tmp_path / "started"
    code = src.format(saved=str(saved), started=str(started))
    esc = code.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    extra = "".join(f"{k} = {v}\n" for k, v in task.items())
    (tmp_path / "plan.toml").write_text(
        '[plan]\nid = "p"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        f'[[milestones.slices.tasks]]\nid = "agent"\nretries = 0\ncommand = ["{sys.executable}", "-c", "{esc}"]\n{extra}'
    )
    return tmp_path / "plan.toml"


def _events(db) -> list[dict]:
    r = uok("events", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return [row["event"] for row in json_lines(r.stdout)]


def _execution(db) -> dict:
    [fin] = [e for e in _events(db) if e["type"] == "ExecutionFinished"]
    return fin


def test_a_timeout_lets_the_task_save_its_state(tmp_path: Path):
    plan = _plan(tmp_path, SAVER, timeout=1)
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 1, r.stderr
    assert (tmp_path / "saved").read_text() == "state saved"  # its SIGTERM handler ran
    fin = _execution(db)
    assert fin["timed_out"] is True and fin["exit_code"] == 3
    assert fin["stop"] == {"reason": "timeout", "signals": ["SIGTERM"], "grace_s": 10.0}
    failed = [e for e in _events(db) if e["type"] == "UnitTransitioned" and e["to_state"] == "failed"]
    assert failed[0]["failure_class"] == "timeout"


def test_a_task_that_outlives_its_grace_is_killed_and_the_turn_says_so(tmp_path: Path):
    plan = _plan(tmp_path, STUBBORN, timeout=1, grace=0.5)
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 1
    assert (tmp_path / "saved").read_text() == "ignored SIGTERM\n"
    fin = _execution(db)
    assert fin["stop"] == {"reason": "timeout", "signals": ["SIGTERM", "SIGKILL"], "grace_s": 0.5}
    assert fin["exit_code"] == -signal.SIGKILL
    pid = int((tmp_path / "started").read_text())
    assert not _alive(pid)


def test_ctrl_c_stops_the_task_gracefully_and_exits_130(tmp_path: Path):
    plan = _plan(tmp_path, SAVER)
    db = tmp_path / "x.db"
    proc = start_run(plan, db)
    run_id = run_id_of(db)
    wait_for((tmp_path / "started").exists, what="the task to start")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert (tmp_path / "saved").read_text() == "state saved"
    events = [e for e in _events(db) if e["run_id"] == run_id]
    fin = next(e for e in events if e["type"] == "ExecutionFinished")
    assert fin["stop"] == {"reason": "shutdown", "signals": ["SIGTERM"], "grace_s": 10.0}
    # the stop is recorded before the run's exit, which stays its last event
    assert events[-1]["type"] == "KernelExited" and events[-1]["status"] == "terminated"
    types = [e["type"] for e in events]
    assert types.index("ExecutionFinished") < types.index("TurnClosed") < types.index("KernelExited")


def test_a_second_ctrl_c_kills_at_once(tmp_path: Path):
    plan = _plan(tmp_path, STUBBORN)  # ignores SIGTERM, grace 10 s
    db = tmp_path / "x.db"
    proc = start_run(plan, db)
    wait_for((tmp_path / "started").exists, what="the task to start")
    proc.send_signal(signal.SIGINT)
    wait_for((tmp_path / "saved").exists, what="the SIGTERM to reach the task")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    fin = _execution(db)
    assert fin["stop"]["signals"] == ["SIGTERM", "SIGKILL"]


def test_an_operator_cancel_is_graceful(tmp_path: Path):
    plan = _plan(tmp_path, SAVER)
    db = tmp_path / "x.db"
    proc = start_run(plan, db)
    run_id = run_id_of(db)
    wait_for((tmp_path / "started").exists, what="the task to start")
    r = uok("steer", run_id, "cancel", "agent", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert proc.wait(timeout=60) == 1
    assert (tmp_path / "saved").read_text() == "state saved"
    assert _execution(db)["stop"]["reason"] == "cancel"


def test_background_jobs_a_task_leaves_are_ended_with_it(tmp_path: Path):
    """A task that exits while a background job still holds its output pipe:
    the turn ends (it does not wait for the job), and the job is stopped."""
    pidfile = tmp_path / "bg.pid"
    (tmp_path / "plan.toml").write_text(
        '[plan]\nid = "p"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "t"\nshell = true\ngrace = 1\n'
        f'command = "sleep 300 & echo $! > {pidfile}; echo done"\n'
    )
    db = tmp_path / "x.db"
    r = uok("run", str(tmp_path / "plan.toml"), "--db", str(db), "--quiet", timeout=60)
    assert r.returncode == 0, r.stderr
    assert not _alive(int(pidfile.read_text()))
    fin = _execution(db)
    assert fin["exit_code"] == 0 and fin["stop"]["reason"] == "leftovers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
