"""Workers claiming a shared run's units through the log (issue 16), on
both stores: real ``uok run --claims`` and ``uok worker`` processes.

The PostgreSQL case is the target (workers on several hosts); the same code
path serves one SQLite file on one machine. The network-namespace version
(workers on other "hosts") is tests/e2e/test_workers_netns.py.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from uok.domain import events as ev

from tests.workers_support import (
    completions,
    create_log,
    events_of,
    finish,
    parallel_plan,
    start_run,
    start_worker,
    uok_env,
    wait_for,
)


def _replays(target, env, cwd) -> None:
    replay = subprocess.run(
        [sys.executable, "-m", "uok", "--db", str(target), "replay", "--all"],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "divergence" in replay.stdout and "DIVERGED" not in replay.stdout.upper().replace("NO DIVERGENCE", "")


def test_two_workers_run_every_unit_exactly_once(logs, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "release").touch()  # tasks finish at once
    units = 8
    plan = parallel_plan(tmp_path / "plan.toml", units)
    target = logs.new()
    create_log(target)
    env = uok_env(out)
    workers = [start_worker(target, env, tmp_path, lease=10) for _ in range(2)]  # no lease should run out here
    run = start_run(target, plan, env)
    code, stdout, stderr = finish(run)
    assert code == 0, stdout + stderr
    served = [finish(w) for w in workers]
    assert [c for c, _, _ in served] == [0, 0], served
    done = sorted(p.name for p in out.glob("done-*"))
    assert done == sorted(f"done-u{i}" for i in range(units))
    events = events_of(target)
    assert completions(events) == {f"u{i}": 1 for i in range(units)}
    reports = [e for _, e in events if isinstance(e, ev.WorkerReported)]
    assert sorted(e.unit_id for e in reports) == sorted(f"u{i}" for i in range(units))
    joined = {e.worker: e for _, e in events if isinstance(e, ev.WorkerJoined)}
    assert len(joined) == 2 and {e.pid for e in joined.values()} == {w.pid for w in workers}
    assert {e.worker for e in reports} <= set(joined)
    # every report was admitted as the run's own ExecutionFinished, with the same measurements
    finished = {e.turn_id: e for _, e in events if isinstance(e, ev.ExecutionFinished)}
    for r in reports:
        assert finished[r.turn_id].exit_code == r.exit_code == 0
    _replays(target, env, tmp_path)


def test_a_killed_worker_loses_its_unit_to_another_and_its_late_result_is_refused(logs, tmp_path: Path):
    from uok.adapters.claims import ClaimLost, append_fenced
    from uok.adapters.eventlog import EventLog

    out = tmp_path / "out"
    out.mkdir()
    plan = parallel_plan(tmp_path / "plan.toml", 3)
    target = logs.new()
    create_log(target)
    env = uok_env(out)
    run = start_run(target, plan, env)
    doomed = start_worker(target, env, tmp_path)
    started = wait_for(lambda: list(out.glob("started-*")), "the first worker's task to start")
    assert len(started) == 1  # a worker runs one unit at a time
    # the host is lost: the worker and its task die at once, mid-unit
    task_pid = int(started[0].read_text())
    doomed.kill()
    os.killpg(task_pid, signal.SIGKILL)
    doomed.communicate(timeout=30)
    lost_unit = started[0].name.split("-")[1]
    # no live worker serves the run now: uok doctor says so (its dead worker still holds a lease)
    doctor = json.loads(_uok(target, env, tmp_path, "doctor", "--json", ok=(0, 1, 2)))
    codes = {f["code"] for f in doctor["diagnosis"]["findings"]}
    assert {"no-worker", "dead-worker"} <= codes, doctor
    (out / "release").touch()
    rescuer = start_worker(target, env, tmp_path)
    code, stdout, stderr = finish(run)
    assert code == 0, stdout + stderr
    assert finish(rescuer)[0] == 0

    events = events_of(target)
    assert completions(events) == {"u0": 1, "u1": 1, "u2": 1}
    assert sorted(p.name for p in out.glob("done-*")) == ["done-u0", "done-u1", "done-u2"]
    # the dead worker's lease expired (a starved rescuer on a very busy machine could lose one too: its
    # unit would be retried like any other, so only the dead worker's expiry is asserted exactly)
    expired = [e for _, e in events if isinstance(e, ev.ClaimExpired) and e.pid == doomed.pid]
    assert [e.unit_id for e in expired] == [lost_unit]
    assert "sent no heartbeat for 2s: lease expired" in expired[0].reason
    turns = [e for _, e in events if isinstance(e, ev.TurnStarted) and e.unit_id == lost_unit]
    assert len(turns) >= 2  # re-run as a new turn, within its retry budget
    failed = next(e for _, e in events if isinstance(e, ev.TurnFinished) and e.turn_id == expired[0].turn_id)
    assert failed.status == "retry" and "lease expired" in failed.error
    claims = {e.turn_id: e for _, e in events if isinstance(e, ev.UnitClaimed)}
    assert claims[turns[1].turn_id].pid == rescuer.pid
    assert (out / f"done-{lost_unit}").read_text() in {t.turn_id for t in turns[1:]}

    # uok status shows every worker and what it did; uok doctor names the dead one
    status = json.loads(_uok(target, env, tmp_path, "status", "--json"))
    rows = {w["pid"]: w for w in status["workers"]}
    assert rows[doomed.pid]["lost"] == 1 and rows[doomed.pid]["left_at"] is None
    assert rows[rescuer.pid]["left_because"] == "the run ended" and rows[rescuer.pid]["reported"] >= 1
    doctor = json.loads(_uok(target, env, tmp_path, "doctor", "--json", ok=(0, 1)))
    dead = [f for f in doctor["diagnosis"]["findings"] if f["code"] == "dead-worker"]
    assert [f["subject"] for f in dead] == [expired[0].worker], doctor
    assert f"pid {doomed.pid} on" in dead[0]["message"] and "lost its lease on 1 unit" in dead[0]["message"]

    # the dead worker's result, arriving late with its old claim epoch: refused, nothing written
    from uok.adapters.log_store import open_log_store

    store = open_log_store(target)
    try:
        log = EventLog(store)
        head = store.head()[0]
        late = ev.WorkerReported(
            run_id=expired[0].run_id, at=expired[0].at, turn_id=expired[0].turn_id, epoch=expired[0].epoch,
            unit_id=lost_unit, worker=expired[0].worker, host=expired[0].host, pid=doomed.pid, exit_code=0,
            duration_ms=1,
        )  # fmt: skip
        with pytest.raises(ClaimLost, match=re.escape(f"lease of worker {expired[0].worker} on turn")):
            append_fenced(log, late)
        with pytest.raises(ClaimLost, match="expired"):  # nor past the expiry's epoch
            append_fenced(log, ev.WorkerReported(**{**_fields(late), "epoch": expired[0].epoch + 1}))
        assert store.head()[0] == head
    finally:
        store.close()
    _replays(target, env, tmp_path)


def _uok(target, env, cwd, *args: str, ok: tuple[int, ...] = (0,)) -> str:
    r = subprocess.run(
        [sys.executable, "-m", "uok", "--db", str(target), *args], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert r.returncode in ok, r.stdout + r.stderr
    return r.stdout


def _fields(e: ev.Event) -> dict:
    return {f: getattr(e, f) for f in e.__struct_fields__}


def test_stopping_the_coordinator_stops_claimed_and_unclaimed_units_and_its_workers(logs, tmp_path: Path):
    """Ctrl-C of ``uok run --claims``: the turns no worker claimed are voided
    (a ClaimExpired at epoch 1: no worker can take them any more), the one a
    worker holds is stopped by that worker, which reports and leaves; the run
    ends terminated (130) and replays."""
    out = tmp_path / "out"
    out.mkdir()  # no release file: every task waits until it is stopped
    plan = parallel_plan(tmp_path / "plan.toml", 4)
    target = logs.new()
    create_log(target)
    env = uok_env(out)
    run = start_run(target, plan, env)
    worker = start_worker(target, env, tmp_path, lease=10)  # no lease should run out here
    wait_for(lambda: list(out.glob("started-*")), "the worker's task to start")
    run.send_signal(signal.SIGINT)
    code, stdout, stderr = finish(run, timeout=120)
    assert code == 130, stdout + stderr
    assert finish(worker, timeout=120)[0] == 0
    events = events_of(target)
    claimed = [e for _, e in events if isinstance(e, ev.UnitClaimed)]
    voided = [e for _, e in events if isinstance(e, ev.ClaimExpired)]
    assert len(claimed) == 1 and len(voided) == 3
    assert all(e.epoch == 1 and e.reason == "stopped before any worker claimed it" for e in voided)
    report = next(e for _, e in events if isinstance(e, ev.WorkerReported))
    assert report.turn_id == claimed[0].turn_id and report.stop is not None
    closed = {e.turn_id for _, e in events if isinstance(e, ev.TurnClosed)}
    assert closed == {e.turn_id for _, e in events if isinstance(e, ev.TurnStarted)}
    assert isinstance(events[-1][1], ev.KernelExited | ev.WorkerLeft)
    assert [e.status for _, e in events if isinstance(e, ev.KernelExited)] == ["terminated"]
    assert not list(out.glob("done-*"))
    _replays(target, env, tmp_path)
