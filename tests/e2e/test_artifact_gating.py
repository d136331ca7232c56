"""Artifact gating end to end (behaviour §11, issue 18's acceptance): real
`uok run` subprocesses and real files. A task that needs CONTEXT.md is held
(recorded, named by `uok status`) until the file exists: released in the
same run when a research task writes it, or by a later run; a draft gives
its own reason; every run replays."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import json_lines, uok


def plan(root: Path, *, research: bool) -> Path:
    write = "import pathlib; pathlib.Path('CONTEXT.md').write_text('what to build')"
    copy = "import pathlib; pathlib.Path('built.txt').write_text(pathlib.Path('CONTEXT.md').read_text())"
    tasks = ""
    if research:
        tasks += f"""
    [[milestones.slices.tasks]]
    id = "research"
    phase = "planning"
    command = ["{sys.executable}", "-c", "{write}"]
"""
    tasks += f"""
    [[milestones.slices.tasks]]
    id = "build"
    depends_on = []
    command = ["{sys.executable}", "-c", "{copy}"]
"""
    path = root / "plan.toml"
    path.write_text(
        f'[plan]\nid = "ctx"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'  requires = ["CONTEXT.md"]\n{tasks}'
    )
    return path


def events(db: Path) -> list[tuple[int, dict]]:
    rows = json_lines(uok("events", "--db", str(db), "--json").stdout)
    return [(row["position"], row["event"]) for row in rows]


def unit_reason(db: Path, unit: str) -> tuple[str, str]:
    [status] = json_lines(uok("status", "--db", str(db), "--json").stdout)
    u = status["plans"]["ctx"]["units"][unit]
    return u["state"], u["reason"]


def test_a_research_task_that_writes_the_context_releases_the_held_task_in_the_same_run(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    db = tmp_path / "events.db"
    r = uok("run", str(plan(root, research=True)), "--db", str(db), "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (root / "built.txt").read_text() == "what to build"
    rows = events(db)
    [(p_held, held)] = [(p, e) for p, e in rows if e["type"] == "UnitHeld"]
    assert held["unit_id"] == "build" and held["reasons"] == ["missing CONTEXT.md"]
    observed = [(p, e) for p, e in rows if e["type"] == "ArtifactsObserved"]
    assert observed and observed[0][1]["facts"]["CONTEXT.md"] == "present"
    [p_build] = [p for p, e in rows if e["type"] == "TurnStarted" and e["unit_id"] == "build"]
    assert p_held < observed[0][0] < p_build  # held, then the file seen, then dispatched
    assert uok("replay", "--all", "--db", str(db)).returncode == 0


def test_without_the_file_the_task_is_held_status_names_it_and_a_later_run_resumes(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    db = tmp_path / "events.db"
    path = plan(root, research=False)
    r = uok("run", str(path), "--db", str(db), "--quiet")
    assert r.returncode == 1
    assert unit_reason(db, "build") == ("queued", "held: missing CONTEXT.md")
    text = uok("status", "--db", str(db)).stdout
    assert "build" in text and "held: missing CONTEXT.md" in text
    [entered] = [e for _, e in events(db) if e["type"] == "KernelEntered"]
    assert entered["artifacts"] == {"CONTEXT.md": "missing", "CONTEXT-DRAFT.md": "missing"}
    exited = [e for _, e in events(db) if e["type"] == "KernelExited"][-1]
    assert exited["status"] == "failed" and "missing CONTEXT.md" in exited["error"]

    (root / "CONTEXT-DRAFT.md").write_text("a first idea\n")
    assert uok("run", str(path), "--db", str(db), "--quiet").returncode == 1
    assert unit_reason(db, "build") == ("queued", "held: draft exists but finalized CONTEXT.md is missing")

    (root / "CONTEXT.md").write_text("  \n\n")
    assert uok("run", str(path), "--db", str(db), "--quiet").returncode == 1
    assert unit_reason(db, "build") == ("queued", "held: CONTEXT.md is blank")

    (root / "CONTEXT.md").write_text("the real thing\n")
    r = uok("run", str(path), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert unit_reason(db, "build")[0] == "completed"
    assert (root / "built.txt").read_text() == "the real thing\n"
    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0, replay.stdout
