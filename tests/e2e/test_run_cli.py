"""`uok run` end to end: real plan, real subprocesses, a real log (the
kernel's runs, recovery after kill -9 and SIGTERM on an apsw file and on
PostgreSQL alike; the bad-plan cases check the file's bytes, apsw only)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import FIXTURES, ROOT, uok


def events_json(db: Path | str) -> list[dict]:
    r = uok("events", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return [orjson.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def finished_demo(module_logs, tmp_path_factory) -> Path | str:
    """One finished run of the demo plan per store, for the tests that only
    read it (each used to run the plan itself: ~3 s a test, more on PostgreSQL)."""
    plans = tmp_path_factory.mktemp("demo-plan")
    shutil.copytree(FIXTURES / "plans", plans, dirs_exist_ok=True, ignore=shutil.ignore_patterns("out", "bad"))
    db = module_logs.new()
    r = uok("run", str(plans / "demo.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    return db


def test_demo_plan_runs_and_records_everything(finished_demo: Path | str):
    rows = events_json(finished_demo)
    assert [row["position"] for row in rows] == list(range(1, len(rows) + 1))
    types = [row["event"]["type"] for row in rows]
    assert types[0] == "KernelEntered" and types[-1] == "KernelExited"
    assert rows[-1]["event"]["status"] == "ok"
    assert "PlanCompiled" in types
    graph = next(row["event"]["graph"] for row in rows if row["event"]["type"] == "PlanCompiled")
    for node in graph["nodes"]:
        states = [
            row["event"]["to_state"]
            for row in rows
            if row["event"]["type"] == "UnitTransitioned" and row["event"]["unit_id"] == node["id"]
        ]
        assert states[0] == "queued" and "completed" in states and states[-1] == "notified", (node["id"], states)
    starts = {row["event"]["turn_id"] for row in rows if row["event"]["type"] == "TurnStarted"}
    finishes = [row["event"]["turn_id"] for row in rows if row["event"]["type"] == "TurnFinished"]
    assert starts and sorted(finishes) == sorted(starts)  # each turn finished exactly once
    # the flaky task failed once and was retried
    fails = [row for row in rows if row["event"]["type"] == "UnitTransitioned" and row["event"]["to_state"] == "failed"]
    assert len(fails) == 1


def test_second_run_of_a_finished_plan_runs_nothing(demo_plan: Path, logs):
    db = logs.new()
    assert uok("run", str(demo_plan), "--db", str(db), "--quiet").returncode == 0
    before = len(events_json(db))
    r = uok("run", str(demo_plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = events_json(db)[before:]
    assert not [row for row in rows if row["event"]["type"] == "TurnStarted"]


def _file_digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


@pytest.fixture(scope="module")
def demo_log(tmp_path_factory) -> Path:
    """A directory holding ``x.db``: one finished run of the demo plan, and
    what a run leaves beside its log. Made once; each test gets a copy."""
    root = tmp_path_factory.mktemp("demo-log")
    shutil.copytree(FIXTURES / "plans", root / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    log = root / "log"
    log.mkdir()
    r = uok("run", str(root / "plan" / "demo.toml"), "--db", str(log / "x.db"), "--quiet")
    assert r.returncode == 0, r.stderr
    return log


@pytest.mark.parametrize("bad", ["cycle.toml", "unknown_dep.toml", "malformed.toml", "duplicate_id.toml", "empty.toml"])
def test_a_bad_plan_exits_2_naming_the_problem_and_writes_nothing(bad: str, demo_log: Path, tmp_path: Path):
    db = shutil.copytree(demo_log, tmp_path / "log") / "x.db"
    digest = _file_digest(db)
    wal = db.with_name(db.name + "-wal")
    wal_digest = _file_digest(wal)
    r = uok("run", str(FIXTURES / "plans" / "bad" / bad), "--db", str(db))
    assert r.returncode == 2
    assert bad in r.stderr and "Traceback" not in r.stderr
    assert _file_digest(db) == digest and _file_digest(wal) == wal_digest


def test_a_bad_plan_does_not_create_a_database(tmp_path: Path):
    db = tmp_path / "new.db"
    r = uok("run", str(FIXTURES / "plans" / "bad" / "cycle.toml"), "--db", str(db))
    assert r.returncode == 2 and "cycle" in r.stderr
    assert not db.exists()


def test_status_shows_units_by_state(finished_demo: Path | str):
    r = uok("status", "--db", str(finished_demo), "--json")
    snap = orjson.loads(r.stdout)
    (plan,) = snap["plans"].values()
    assert set(plan["by_state"]) == {"completed"}
    assert snap["runs"][0]["status"] == "ok"


def test_kill_9_mid_run_then_rerun_recovers_and_completes(tmp_path: Path, logs):
    """kill -9 while units are running: the next run closes the first as
    recovered, runs no completed unit again, and completes the plan."""
    plan_dir = tmp_path / "p"
    plan_dir.mkdir()
    # each task appends its id to runs.log when it starts, then sleeps: t2,
    # on its first start, long enough to be killed in the middle (30 s, never
    # waited for: the kill ends the run and the rerun ends the orphan); every
    # other start 0.1 s (the rerun used to wait 5 s for t2 again and 5 for t3)
    task = (
        "import os,sys,time; seen=open('runs.log').read().split() if os.path.exists('runs.log') else [];"
        " open('runs.log','a').write(sys.argv[1]+'\\\\n');"
        " time.sleep(float(sys.argv[2]) if sys.argv[1] not in seen else 0.1)"
    )
    (plan_dir / "plan.toml").write_text(
        '[plan]\nid = "k"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        + "".join(
            f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["{sys.executable}", "-c", "{task}", "t{i}", "{30 if i == 2 else 0.1}"]\n'
            for i in range(4)
        )
    )
    db = logs.new()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while time.time() < deadline:  # wait until t2 (the long one) is running
        if (plan_dir / "runs.log").exists() and "t2" in (plan_dir / "runs.log").read_text():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("t2 never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = uok("run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    rows = events_json(db)
    first_run = rows[0]["event"]["run_id"]
    recovered = [row["event"] for row in rows if row["event"]["type"] == "RunRecovered"]
    assert len(recovered) == 1 and recovered[0]["recovered_run"] == first_run
    assert recovered[0]["stale_units"] == ["t2"]
    starts = (plan_dir / "runs.log").read_text().split()
    assert starts.count("t0") == 1 and starts.count("t1") == 1  # completed before the kill: not run again
    assert starts.count("t2") == 2 and starts.count("t3") == 1
    assert rows[-1]["event"]["type"] == "KernelExited" and rows[-1]["event"]["status"] == "ok"
    # the chain still verifies
    store = logs.open(db)
    count, _ = store.verify_chain()
    assert count == len(rows)
    store.close()


def test_sigterm_records_a_terminated_exit(tmp_path: Path, logs):
    plan_dir = tmp_path / "p"
    plan_dir.mkdir()
    (plan_dir / "plan.toml").write_text(
        '[plan]\nid = "s"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "long"\ncommand = ["{sys.executable}", "-c", "import time; open(\'started\',\'w\').close(); time.sleep(30)"]\n'
    )
    db = logs.new()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while not (plan_dir / "started").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143  # 128 + SIGTERM: a run a signal ended
    rows = events_json(db)
    last = rows[-1]["event"]
    assert last["type"] == "KernelExited" and last["status"] == "terminated"
    assert any(row["event"]["type"] == "UnitTransitioned" and row["event"]["to_state"] == "cancelled" for row in rows)
