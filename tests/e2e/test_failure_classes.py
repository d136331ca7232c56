"""Failure classes that save money (issue 12): a command that cannot start
is a `config` failure, never retried; a mistyped gate id is refused before
anything runs. Real `uok run` subprocesses, real logs."""

from __future__ import annotations

from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import read_events


def _plan(path: Path, task: str) -> Path:
    path.write_text(f'[plan]\nid = "fc"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n{task}')
    return path


def test_a_command_that_cannot_start_fails_once_as_config(tmp_path: Path):
    plan = _plan(tmp_path / "plan.toml", '[[milestones.slices.tasks]]\nid = "a"\ncommand = ["claude-codee", "-p"]\n')
    db = tmp_path / "log.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    rows = [e for _, e in read_events(db)]
    assert sum(isinstance(e, ev.TurnStarted) and e.unit_id == "a" for e in rows) == 1  # retries = 2, not used
    [done] = [e for e in rows if isinstance(e, ev.ExecutionFinished)]
    assert done.cannot_start and "cannot start 'claude-codee'" in done.error
    [fin] = [e for e in rows if isinstance(e, ev.TurnFinished) and e.unit_id == "a"]
    assert (fin.status, fin.failure_class) == ("failed", "config")
    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0 and "no divergence" in replay.stdout, replay.stdout + replay.stderr


def test_a_mistyped_gate_id_is_refused_before_anything_runs(tmp_path: Path):
    task = '[[milestones.slices.tasks]]\nid = "a"\ncommand = ["touch", "ran"]\ngates = ["securty"]\n'
    plan = _plan(tmp_path / "plan.toml", task)
    db = tmp_path / "log.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "task 'a': unknown gate 'securty' (known: " in r.stderr and "security" in r.stderr
    assert not db.exists() and not (tmp_path / "ran").exists()
