"""What a ``kill -9`` of ``uok run`` leaves running is ended by the next
start, before anything runs again (uok.adapters.orphans).

Tasks are spawned without a death signal (the fast spawn path, issue 15),
so a task and its children outlive a killed kernel; the next ``uok run``
finds every process whose environment names the dead run and ends its
process group, and says how many in the run's ``PidProbe``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from uok.adapters.orphans import end_leftovers, leftovers
from uok.domain import events as ev

from tests.conftest import uok
from tests.reliability.support import read_log, spawn_run

pytestmark = pytest.mark.reliability

# a task (the first time): a grandchild in its group, both pids written, then it waits to be killed
TASK = """
import os, subprocess, sys, time
here = sys.argv[1]
if os.path.exists(os.path.join(here, "ran-once")):
    sys.exit(0)
open(os.path.join(here, "ran-once"), "w").close()
child = subprocess.Popen(["sleep", "300"])
with open(os.path.join(here, "pids.tmp"), "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(os.path.join(here, "pids.tmp"), os.path.join(here, "pids"))
time.sleep(300)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may be slow to collect it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc is None or proc.poll() is None, proc.communicate() if proc else ""
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(running(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if running(p)]
        time.sleep(0.01)


def wait_environ(pid: int, timeout: float = 60) -> None:
    """Until ``pid``'s environment can be read. Popen returns once the child's exec has
    replaced its memory, and the kernel lays out the new environment a moment later:
    in between, /proc/<pid>/environ reads empty (seen once under a busy core)."""
    deadline = time.monotonic() + timeout
    while not Path(f"/proc/{pid}/environ").read_bytes():
        assert time.monotonic() < deadline, f"{pid} has no environment"
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_the_groups_of_a_dead_runs_processes_are_ended_and_no_other(tmp_path: Path):
    dead, alive = f"dead-{uuid.uuid4().hex}", f"alive-{uuid.uuid4().hex}"
    script = (
        "import subprocess,sys,time; c = subprocess.Popen(['sleep','300']); print(c.pid, flush=True); time.sleep(300)"
    )
    procs = {
        run: subprocess.Popen(
            [sys.executable, "-c", script],
            env={**os.environ, "UOK_RUN_ID": run},
            stdout=subprocess.PIPE,
            text=True,
            process_group=0,
        )
        for run in (dead, alive)
    }
    try:
        grandchild = {run: int(p.stdout.readline()) for run, p in procs.items()}  # observed: both started
        for pid in grandchild.values():
            wait_environ(pid)  # its exec done: the environment it inherited is there to read
        assert set(leftovers([dead])) == {procs[dead].pid, grandchild[dead]}
        assert end_leftovers([dead]) == {dead: 2}
        procs[dead].wait(timeout=10)
        wait_gone([grandchild[dead]])
        assert running(procs[alive].pid) and running(grandchild[alive])  # another run's processes stay
        assert leftovers([dead]) == {} and end_leftovers([dead]) == {}
    finally:
        for p in procs.values():
            os.killpg(p.pid, signal.SIGKILL) if p.poll() is None else None
            p.wait()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_a_child_in_a_session_of_its_own_with_no_environment_is_ended_with_its_parent(tmp_path: Path):
    """Found by descent, not by environment: ``setsid env -i sleep`` leaves the task's
    group and names no run, as a child between exec and its environment does for a moment."""
    dead = f"dead-{uuid.uuid4().hex}"
    script = (
        "import subprocess,sys,time; c = subprocess.Popen(['setsid', 'env', '-i', 'sleep', '300']);"
        " print(c.pid, flush=True); time.sleep(300)"
    )
    task = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "UOK_RUN_ID": dead},
        stdout=subprocess.PIPE,
        text=True,
        process_group=0,
    )
    try:
        loner = int(task.stdout.readline())  # observed: started
        deadline = time.monotonic() + 60
        while Path(f"/proc/{loner}/cmdline").read_bytes().split(b"\0")[0] != b"sleep":
            assert time.monotonic() < deadline, "setsid env -i never became sleep"
            time.sleep(0.01)
        assert os.getpgid(loner) != task.pid and Path(f"/proc/{loner}/environ").read_bytes() == b""
        assert leftovers([dead]) == {task.pid: dead, loner: dead}
        assert end_leftovers([dead]) == {dead: 2}
        task.wait(timeout=10)
        wait_gone([loner])
    finally:
        if task.poll() is None:
            os.killpg(task.pid, signal.SIGKILL)
        task.wait()


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc (Linux)")
def test_a_task_and_its_child_left_by_kill_9_are_ended_before_the_next_run_reruns_it(tmp_path: Path):
    (tmp_path / "task.py").write_text(TASK)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "orphans"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "t"\nretries = 3\n'
        f"command = [{sys.executable!r}, {str(tmp_path / 'task.py')!r}, {str(tmp_path)!r}]\n"
    )
    db = tmp_path / "events.db"
    proc = spawn_run(plan, db)
    wait_for(tmp_path / "pids", proc)
    task, child = map(int, (tmp_path / "pids").read_text().split())
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert running(task) and running(child)  # nothing ties them to the dead kernel

    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_gone([task, child])
    entered = [e for _, e in read_log(db) if isinstance(e, ev.KernelEntered)]
    [probe] = entered[-1].probes
    assert not probe.alive and probe.ended == 2 and probe.run_id == entered[0].run_id
