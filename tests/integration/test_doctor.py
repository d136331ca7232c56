"""`uok doctor` for real: on recorded, live, killed, tampered and
breaker-tripped logs (its pure classification rules: tests/unit/test_diagnosis.py)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import apsw
import orjson
import pytest
from uok.adapters.doctor import count_descendants
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.events import BreakerTransitioned

from tests.conftest import FIXTURES, ROOT, json_lines, uok

# ------------------------------------------------------------------ the real thing


def doctor(db: Path, *extra: str) -> tuple[int, dict]:
    r = uok("doctor", "--db", str(db), "--json", *extra)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, orjson.loads(r.stdout)


def codes(out: dict) -> list[str]:
    return [f["code"] for f in out["diagnosis"]["findings"]]


def test_a_finished_demo_run_is_healthy(tmp_path: Path):
    shutil.copytree(FIXTURES / "plans", tmp_path / "plan", ignore=shutil.ignore_patterns("out", "bad"))
    db = tmp_path / "d.db"
    assert uok("run", str(tmp_path / "plan" / "demo.toml"), "--db", str(db), "--quiet").returncode == 0
    rc, out = doctor(db)
    assert rc == 0 and out["diagnosis"]["classification"] == "healthy"
    assert [c for c in codes(out) if c != "projection-lag"] == []
    r = uok("doctor", "--db", str(db), "--publish")
    assert r.returncode == 0 and "healthy" in r.stdout
    sent = json_lines(uok("sql", "SELECT sender, recipient, payload FROM messages", "--db", str(db), "--json").stdout)
    assert [(m["sender"], m["recipient"], m["payload"]["classification"]) for m in sent] == [
        ("uok-doctor", "observers", "healthy")
    ]
    assert all(f["severity"] == "info" for f in sent[0]["payload"]["findings"])


def _slow_plan(tmp_path: Path, seconds: float, timeout: int) -> Path:
    d = tmp_path / "p"
    d.mkdir()
    task = "import sys,time; open('started','w').write('x'); time.sleep(float(sys.argv[1]))"
    (d / "plan.toml").write_text(
        '[plan]\nid = "slow"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "nap"\ntimeout = {timeout}\n'
        f'command = ["{sys.executable}", "-c", "{task}", "{seconds}"]\n'
    )
    return d / "plan.toml"


def _start(plan: Path, db: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 30
    while not (plan.parent / "started").exists():
        if time.time() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("the task never started")
        time.sleep(0.05)
    return proc


def test_live_run_running_quiet_stuck_then_killed_needs_repair_then_recovered(tmp_path: Path):
    plan = _slow_plan(tmp_path, seconds=8, timeout=3600)
    db = tmp_path / "s.db"
    proc = _start(plan, db)
    try:
        rc, out = doctor(db)
        assert rc == 0 and out["diagnosis"]["classification"] == "running", out["diagnosis"]
        [live] = out["facts"]["open_runs"]
        assert live["alive"] is True and live["pid"] == proc.pid and live["descendants"] >= 1
        now = datetime.now(UTC)
        # ten minutes later, nothing new written, but the task process is still there
        rc, out = doctor(db, "--now", (now + timedelta(minutes=10)).isoformat())
        assert (rc, out["diagnosis"]["classification"]) == (0, "quiet-but-healthy")
        # two hours later the unit is far beyond its one-hour timeout
        rc, out = doctor(db, "--now", (now + timedelta(hours=2)).isoformat())
        assert rc == 1 and out["diagnosis"]["classification"] == "degraded" and "stuck-unit" in codes(out)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    rc, out = doctor(db)
    assert rc == 1 and out["diagnosis"]["classification"] == "needs-repair"
    f = next(f for f in out["diagnosis"]["findings"] if f["code"] == "orphaned-run")
    assert f"uok run {plan}" in f["recommendation"]
    (plan.parent / "started").unlink()
    plan.write_text(plan.read_text().replace('"8"]', '"0"]'))
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0  # the recommended command
    rc, out = doctor(db)
    assert rc == 0 and out["diagnosis"]["classification"] == "healthy", out["diagnosis"]  # healed by a clean run


def test_open_breaker_degrades_and_a_tampered_log_needs_repair(tmp_path: Path):
    db = tmp_path / "b.db"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    with SqliteEventStore(db) as store:
        EventLog(store).append(
            [
                ev.KernelEntered(run_id="r1", at=at, pid=1, plan_path="x.toml", plan_source="", workers=1),
                BreakerTransitioned(
                    run_id="r1",
                    at=at,
                    gate_id="security",
                    from_state="closed",
                    to_state="open",
                    streak=1,
                    consecutive_failures=3,
                    open_until=at + timedelta(minutes=1),
                    reason="3 failures",
                ),
                ev.KernelExited(run_id="r1", at=at, status="ok", pid=1),
            ]
        )
    rc, out = doctor(db)
    assert rc == 1 and out["diagnosis"]["classification"] == "degraded"
    f = next(f for f in out["diagnosis"]["findings"] if f["code"] == "breaker-open")
    assert f["subject"] == "security" and "uok breakers" in f["recommendation"]
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute(
        "UPDATE events SET payload = CAST(replace(payload, '3 failures', '0 failures') AS BLOB) WHERE position = 2"
    )
    conn.close()
    r = uok("doctor", "--db", str(db))
    assert r.returncode == 1 and "needs-repair" in r.stdout and "position 2" in r.stdout and "uok verify" in r.stdout
    r = uok("doctor", "--db", str(tmp_path / "missing.db"))
    assert r.returncode == 2 and "no event log" in r.stderr
    r = uok("doctor", "--db", str(db), "--now", "yesterday")
    assert r.returncode == 2


def test_count_descendants_sees_a_grandchild():
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess,sys,time; subprocess.Popen([sys.executable,'-c','import time; time.sleep(20)']); time.sleep(20)",
        ]
    )
    try:
        deadline = time.time() + 10
        while count_descendants(child.pid) != 1 and time.time() < deadline:
            time.sleep(0.05)
        assert count_descendants(child.pid) == 1  # the grandchild
        assert count_descendants(os.getpid()) >= 2
    finally:
        for pid in _descendant_pids(child.pid):
            os.kill(pid, signal.SIGKILL)
        child.kill()
        child.wait()


def _descendant_pids(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                out.append(int(entry.name))
    return out
