"""Gitops against a real `git init` repository: commit, snapshot, status-only, timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from uok.adapters.eventlog import EventLog
from uok.adapters.gitops import snapshot_ref
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.events import GateRun, GitTransactionRecorded

from tests.conftest import uok
from tests.run_support import assert_turns_closed_once, of_type, read_events
from uok.bootstrap import build_runner

STAGES = ["turn-start", "stage", "checkpoint", "publish", "record"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.com")
    git(repo, "config", "user.name", "Dev")
    (repo / "README").write_text("hello\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "initial")
    write = "import sys; open(sys.argv[1], 'w').write(sys.argv[1])"
    (repo / "plan.toml").write_text(
        '[plan]\nid = "g"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        + "".join(
            f'[[milestones.slices.tasks]]\nid = "{t}"\ncommand = ["{sys.executable}", "-c", "{write}", "{t}.txt"]\n'
            for t in ("one", "two")
        )
    )
    return repo


def run(repo: Path, db: Path, **flags) -> str:
    with SqliteEventStore(db) as store:
        result = build_runner(EventLog(store), repo / "plan.toml", workers=1, flags=flags).run()
    assert result.status == "ok" and result.units_failed == 0
    return result.run_id


def records(db: Path) -> list[GitTransactionRecorded]:
    return [e for _, e in of_type(read_events(db), GitTransactionRecorded)]


def by_turn(recs: list[GitTransactionRecorded]) -> dict[str, list[GitTransactionRecorded]]:
    out: dict[str, list[GitTransactionRecorded]] = {}
    for r in recs:
        out.setdefault(r.turn_id, []).append(r)
    return out


def test_commit_action_commits_each_turn_with_a_trailer_and_records_every_stage(repo: Path):
    db = repo / ".uok" / "events.db"  # inside the repository: must never be committed
    run_id = run(repo, db, gitops=True, gitops_turn_action="commit")
    turns = by_turn(records(db))
    assert len(turns) == 3  # one, two, complete-slice:M1/S1
    for recs in turns.values():
        assert [r.stage for r in recs] == STAGES
        assert all(r.action == "commit" for r in recs)
    log = git(repo, "log", "--format=%s%n%b---")
    assert "Uok-Unit: one" in log and "Uok-Unit: two" in log
    assert git(repo, "show", "--name-only", "--format=", "HEAD") == "two.txt"
    assert ".uok" not in git(repo, "log", "--name-only", "--format=")  # the event log stayed out
    publish = {
        r.detail.get("commit") for recs in turns.values() for r in recs if r.stage == "publish" and r.status == "ok"
    }
    assert git(repo, "rev-parse", "HEAD") in publish
    noop = [recs for recs in turns.values() if recs[3].status == "skipped"]
    assert len(noop) == 1 and noop[0][3].detail["summary"] == "no publish gate ran"  # the slice's no-command unit
    assert_turns_closed_once(read_events(db), run_id)


def test_snapshot_action_writes_refs_and_leaves_head_and_index_alone(repo: Path, tmp_path: Path):
    head = git(repo, "rev-parse", "HEAD")
    db = tmp_path / "s.db"
    run(repo, db, gitops=True, gitops_turn_action="snapshot")
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == "?? one.txt\n?? plan.toml\n?? two.txt".replace("\n", "\n")
    publishes = [r for r in records(db) if r.stage == "publish"]
    refs = [r.detail["ref"] for r in publishes if r.status == "ok"]
    assert len(refs) == 3 and refs[0] == snapshot_ref(publishes[0].turn_id)
    assert refs[0].startswith("refs/uok/snapshots/") and ":" not in refs[0]
    files = git(repo, "ls-tree", "-r", "--name-only", refs[1]).split()
    assert {"README", "one.txt", "two.txt", "plan.toml"} <= set(files)
    assert git(repo, "rev-parse", f"{refs[0]}^") == head


def test_status_only_records_dirtiness(repo: Path, tmp_path: Path):
    db = tmp_path / "s.db"
    run(repo, db, gitops=True, gitops_turn_action="status-only")
    checkpoints = [r for r in records(db) if r.stage == "checkpoint"]
    assert "one.txt" in checkpoints[0].detail["files"] and checkpoints[0].detail["dirty"] >= 2
    assert git(repo, "rev-list", "--count", "HEAD") == "1"  # nothing committed


def test_a_hanging_commit_hook_times_out_the_publish_gate_which_retries(repo: Path, tmp_path: Path):
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nif [ ! -e .git/slow-once ]; then touch .git/slow-once; sleep 5; fi\nexit 0\n")
    hook.chmod(0o755)
    db = tmp_path / "t.db"
    run(repo, db, gitops=True, gitops_turn_action="commit", gitops_timeout=0.5)
    runs = [e for _, e in of_type(read_events(db), GateRun) if e.gate_id == "gitops" and e.unit_id == "one"]
    assert [r.outcome for r in runs] == ["retry", "pass"]
    assert "timed out" in runs[0].rationale and runs[0].duration_ms < 4000  # cut short, not waited for
    assert "Uok-Unit: two" in git(repo, "log", "-1", "--format=%b")
    assert git(repo, "show", "--name-only", "--format=", "HEAD~1") == "one.txt"


def test_gitops_is_off_by_default_and_off_outside_a_repository(repo: Path, tmp_path: Path):
    db = tmp_path / "a.db"
    run(repo, db)  # a git repo, but gitops not asked for
    assert records(db) == [] and git(repo, "rev-list", "--count", "HEAD") == "1"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "plan.toml").write_text((repo / "plan.toml").read_text())
    db2 = tmp_path / "b.db"
    with SqliteEventStore(db2) as store:
        assert build_runner(EventLog(store), plain / "plan.toml", flags={"gitops": True}).run().status == "ok"
    assert records(db2) == []


def test_uok_run_gitops_flag_end_to_end(repo: Path, tmp_path: Path):
    r = uok("run", str(repo / "plan.toml"), "--db", str(tmp_path / "c.db"), "--quiet", "--gitops", "commit")
    assert r.returncode == 0, r.stderr
    assert "Uok-Unit: two" in git(repo, "log", "-1", "--format=%b")
    r = uok("run", str(repo / "plan.toml"), "--db", str(tmp_path / "d.db"), "--quiet", "--writer-ttl", "0")
    assert r.returncode == 2 and "--writer-ttl" in r.stderr
