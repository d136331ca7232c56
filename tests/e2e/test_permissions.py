"""Permission profiles enforced where uok can (issue 19, behaviour §5):
under a strict profile a task that changes a file it did not declare fails
naming the file; the same task passes under the default profile; under the
read-only (restricted) profile any change fails. Real runs, real files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from uok.domain import events as ev
from uok.domain.eval.suite import to_toml

from tests.conftest import uok
from tests.run_support import of_type, read_events

WRITE = "import pathlib,sys; [pathlib.Path(p).parent.mkdir(parents=True, exist_ok=True) or pathlib.Path(p).write_text('x') for p in sys.argv[1:]]"


def plan(root: Path, *files: str, **fields) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    task = {"id": "edit", "command": [sys.executable, "-c", WRITE, *files], "retries": 0, **fields}
    path = root / "plan.toml"
    path.write_text(
        to_toml({"plan": {"id": "perm"}, "milestones": [{"id": "M", "slices": [{"id": "S", "tasks": [task]}]}]})
    )
    return path


def run(p: Path, db: Path, *extra: str):
    r = uok("run", str(p), "--db", str(db), "--json", "--workers", "1", *extra, cwd=p.parent)
    return r, read_events(db)


def test_a_strict_task_that_touches_an_undeclared_file_fails_naming_it(tmp_path: Path):
    fields = {"writes": ["src/app.py"], "intents": {"write": ["build/**"]}}
    p = plan(tmp_path / "w", "src/app.py", "build/out/x.o", "notes.txt", **fields)
    r, events = run(p, tmp_path / "s.db", "--permission-profile", "strict")
    assert r.returncode == 1, r.stdout + r.stderr
    [gate] = [e for _, e in of_type(events, ev.GateRun) if e.gate_id == "permissions"]
    assert gate.outcome == "fail" and gate.failure_class == "policy"
    assert "notes.txt" in gate.rationale and "src/app.py," not in gate.rationale.split(":")[0]
    [unit] = [e for _, e in of_type(events, ev.UnitTransitioned) if e.unit_id == "edit" and e.to_state == "failed"]
    assert "notes.txt" in unit.reason  # the unit's failure names the file
    # the same task under the default profile passes, and no permission gate runs
    q = plan(tmp_path / "v", "src/app.py", "build/out/x.o", "notes.txt", **fields)
    r, events = run(q, tmp_path / "d.db")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not [e for _, e in of_type(events, ev.GateRun) if e.gate_id == "permissions"]


def test_strict_declared_changes_pass_and_read_only_allows_none(tmp_path: Path):
    ok = plan(tmp_path / "a", "src/app.py", writes=["src/app.py"], metadata={"permission_profile": "strict"})
    r, events = run(ok, tmp_path / "a.db")
    assert r.returncode == 0, r.stdout + r.stderr
    [gate] = [e for _, e in of_type(events, ev.GateRun) if e.gate_id == "permissions"]
    assert gate.outcome == "pass"
    ro = plan(tmp_path / "b", "src/app.py", writes=["src/app.py"])
    r, events = run(ro, tmp_path / "b.db", "--permission-profile", "read-only")
    assert r.returncode == 1
    [gate] = [e for _, e in of_type(events, ev.GateRun) if e.gate_id == "permissions"]
    assert gate.outcome == "fail" and "src/app.py" in gate.rationale and "read-only" in gate.rationale
    [entered] = [e for _, e in of_type(events, ev.KernelEntered)]
    assert entered.flags["permission_profile"] == "restricted"
    run_id = json.loads(r.stdout)["run_id"]
    assert uok("replay", run_id, "--db", str(tmp_path / "b.db")).returncode == 0
    bad = uok("run", str(ro), "--db", str(tmp_path / "c.db"), "--permission-profile", "everything")
    assert bad.returncode == 2 and "unknown permission profile" in bad.stderr
