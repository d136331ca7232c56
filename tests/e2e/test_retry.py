"""Retry and amend on the same log (issue 12): `uok retry` and a re-run of an
amended plan re-queue units as events; replay and time travel see it all.
Real `uok run` / `uok retry` subprocesses, real logs."""

from __future__ import annotations

import json
from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import read_events, task_plan


def _turns(db, unit_id: str) -> int:
    return sum(1 for _, e in read_events(db) if isinstance(e, ev.TurnStarted) and e.unit_id == unit_id)


def test_a_failed_task_fixed_and_retried_ends_ok_and_the_past_still_shows_the_failure(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("a", "raise SystemExit(3)"), ("b", "pass")], extra="retries = 0\n")
    db = logs.new()
    assert uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path).returncode == 1
    before = json.loads(uok("status", "--json", "--db", str(db)).stdout)["position"]

    task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "pass")], extra="retries = 0\n")  # the fix
    r = uok("retry", "--failed", "--reason", "fixed the exit", "--db", str(db), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["status"] == "ok"
    requeued = [e for _, e in read_events(db) if isinstance(e, ev.UnitRequeued)]
    assert [(e.unit_id, e.cause, e.was) for e in requeued] == [
        ("a", "retry", "failed"),
        ("b", "dependency", "blocked"),
        ("complete-slice:M1/S1", "dependency", "blocked"),
    ]
    assert requeued[0].epoch and requeued[0].reason == "fixed the exit" and "@" in requeued[0].by
    listing = uok("events", "--db", str(db)).stdout
    assert "UnitRequeued         a (failed) queued again, retry: fixed the exit (by " in listing

    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0 and replay.stdout.count("no divergence") == 2, replay.stdout + replay.stderr
    past = json.loads(uok("state", "--at", str(before), "--json", "--db", str(db)).stdout)
    assert past["plans"]["p"]["units"]["a"]["state"] == "failed"
    now = json.loads(uok("state", "--json", "--db", str(db)).stdout)
    assert now["plans"]["p"]["units"]["a"]["state"] == "completed"
    runs = json.loads(uok("status", "--json", "--db", str(db)).stdout)["runs"]
    assert [x["status"] for x in runs] == ["failed", "ok"]

    # a fork taken before the retry retries the same way on its own
    fork = tmp_path / "fork.db"
    r = uok("fork", runs[0]["run_id"], "--at", str(before), "--out", str(fork), "--db", str(db))
    assert r.returncode == 0, r.stderr
    r = uok("retry", "--failed", "--db", str(fork), "--json", cwd=tmp_path)
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok", r.stdout + r.stderr
    assert uok("replay", "--all", "--db", str(fork)).stdout.count("no divergence") == 2


def test_an_amended_task_reruns_with_its_dependents_and_says_why(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "pass"), ("c", "pass")])
    db = logs.new()
    assert uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path).returncode == 0
    again = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert again.returncode == 0 and "queued again" not in again.stderr  # unchanged: nothing re-runs

    task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "print('v2')"), ("c", "pass")])
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "uok: b (completed) queued again, amended: command changed (fingerprint " in r.stderr
    assert "uok: c (completed) queued again, dependency: dependency b was re-queued" in r.stderr
    assert (_turns(db, "a"), _turns(db, "b"), _turns(db, "c")) == (1, 2, 2)  # a, unchanged, stays done
    sql = uok("sql", "SELECT unit_id, cause, was, reason FROM requeues ORDER BY position", "--db", str(db), "--json")
    assert sql.returncode == 0, sql.stderr
    assert [tuple(json.loads(x).values()) for x in sql.stdout.splitlines()][:2] == [
        ("b", "amended", "completed", "command changed"),
        ("c", "dependency", "completed", "dependency b was re-queued"),
    ]
    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0 and replay.stdout.count("no divergence") == 3, replay.stdout + replay.stderr


def test_a_plain_rerun_requeues_failed_units_and_a_retry_of_an_unknown_unit_writes_nothing(tmp_path: Path, logs):
    flag = tmp_path / "ok"
    src = f"import pathlib, sys; sys.exit(0 if pathlib.Path({str(flag)!r}).exists() else 4)"
    plan = task_plan(tmp_path / "plan.toml", [("a", src)], extra="retries = 0\n")
    db = logs.new()
    assert uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path).returncode == 1
    head = json.loads(uok("status", "--json", "--db", str(db)).stdout)["position"]
    bad = uok("retry", "nope", "--db", str(db), cwd=tmp_path)
    assert bad.returncode == 2 and "has no unit 'nope'" in bad.stderr, bad.stderr
    assert json.loads(uok("status", "--json", "--db", str(db)).stdout)["position"] == head

    flag.touch()  # what the task needed, outside the plan
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and "uok: a (failed) queued again, rerun:" in r.stderr, r.stderr


RECORDS = """
import json, os, pathlib, shutil, sys
attempt = len(list(pathlib.Path('.').glob('seen.*.json'))) + 1
shutil.copy(os.environ["UOK_FEEDBACK_FILE"], f"seen.{attempt}.json")
env = {k: v for k, v in os.environ.items() if k.startswith("UOK_PREVIOUS_")}
pathlib.Path(f"env.{attempt}.json").write_text(json.dumps(env))
if attempt == 1:
    print("ModuleNotFoundError: no module named 'lib'", file=sys.stderr)
    sys.exit(1)
"""


def test_a_retried_task_is_told_why_it_runs_again(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("a", RECORDS)], extra="retries = 0\n")
    db = tmp_path / "log.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path).returncode == 1
    assert json.loads((tmp_path / "env.1.json").read_text()) == {}  # a first attempt has no past
    r = uok("retry", "a", "--reason", "lib is installed now", "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fb = json.loads((tmp_path / "seen.2.json").read_text())
    assert fb["requeued"]["cause"] == "retry" and fb["requeued"]["reason"] == "lib is installed now"
    assert fb["requeued"]["was"] == "failed" and fb["attempt"] == 1
    [prev] = fb["previous_attempts"]
    assert prev["failure_class"] == "execution" and "no module named 'lib'" in prev["stderr_tail"]
    env = json.loads((tmp_path / "env.2.json").read_text())
    assert env["UOK_PREVIOUS_STATUS"] == "failed" and env["UOK_PREVIOUS_FAILURE_CLASS"] == "execution"
    assert "exit code 1" in env["UOK_PREVIOUS_REASON"]


def test_a_retry_with_nothing_to_retry_writes_nothing(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("a", "raise SystemExit(3)")], extra="retries = 0\n")
    db = tmp_path / "log.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path).returncode == 1
    head = json.loads(uok("status", "--json", "--db", str(db)).stdout)["position"]
    r = uok("retry", "--cancelled", "--db", str(db), cwd=tmp_path)
    assert r.returncode == 2 and "nothing to retry: no unit of plan p ended cancelled" in r.stderr, r.stderr
    assert json.loads(uok("status", "--json", "--db", str(db)).stdout)["position"] == head
