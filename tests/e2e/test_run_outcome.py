"""Honest run outcomes (issue 12): a run whose units did not all complete is
recorded ``failed`` and every reader says so: the exit code, ``uok status``,
``uok sql``'s ``runs`` view, the ``uok_runs`` metric and ``uok doctor``.
Real `uok run` subprocesses, real logs."""

from __future__ import annotations

import json
from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import read_events, task_plan


def test_a_run_whose_every_unit_fails_is_failed_everywhere(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("a", "raise SystemExit(3)"), ("b", "pass")], extra="retries = 0\n")
    db = logs.new()
    r = uok("run", str(plan), "--db", str(db), "--json", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    result = json.loads(r.stdout)
    assert result["status"] == "failed" and result["exit_code"] == 1
    assert result["units_failed"] == 3  # a, b and the slice's completion unit

    [exited] = [e for _, e in read_events(db) if isinstance(e, ev.KernelExited)]
    assert exited.status == "failed" and "a, b" in exited.error  # the decision itself, in the log

    status = json.loads(uok("status", "--json", "--db", str(db)).stdout)
    assert [x["status"] for x in status["runs"]] == ["failed"]
    sql = uok("sql", "SELECT status FROM runs", "--db", str(db), "--json")
    assert sql.returncode == 0, sql.stderr
    assert [json.loads(line)["status"] for line in sql.stdout.splitlines()] == ["failed"]
    metrics = uok("metrics", "--db", str(db)).stdout
    assert 'uok_runs{status="failed"} 1' in metrics and 'uok_runs{status="ok"}' not in metrics
    doctor = uok("doctor", "--db", str(db), "--json")
    verdict = json.loads(doctor.stdout)["diagnosis"]
    assert doctor.returncode == 1 and verdict["classification"] == "degraded"
    assert any(f["code"] == "run-failed" for f in verdict["findings"])

    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0 and "no divergence" in replay.stdout, replay.stdout + replay.stderr


def test_a_run_whose_units_all_complete_is_ok(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")])
    db = logs.new()
    r = uok("run", str(plan), "--db", str(db), "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok", r.stdout + r.stderr
    assert uok("doctor", "--db", str(db)).returncode == 0


def test_the_live_bar_counts_completed_units_and_shows_the_failures_beside_it(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "raise SystemExit(3)")], extra="retries = 0\n")
    r = uok("run", str(plan), "--db", str(logs.new()), cwd=tmp_path, env={"COLUMNS": "120"})
    assert r.returncode == 1, r.stderr
    bar = [line for line in r.stderr.splitlines() if line.startswith("plan p")][-1]
    assert "1/3" in bar and "2 failed" in bar, r.stderr  # a completed; b failed, the slice blocked: never 3/3
    assert "exited failed: 1 completed, 2 failed" in r.stderr
