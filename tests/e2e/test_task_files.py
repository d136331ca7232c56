"""A plan built from Markdown task files, end to end (behaviour §11): real
`uok run` subprocesses, real files. The body reaches the task as a file
($UOK_PROMPT_FILE), the files are recorded with the plan so the run replays
after they change, and a bad task file is refused naming file and line."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import json_lines, uok

PLAN = """
[plan]
id = "md"
[[milestones]]
id = "M1"
  [[milestones.slices]]
  id = "S1"
  task_files = "tasks/*.md"
"""

COPY_PROMPT = """import os, shutil, sys; shutil.copy(os.environ["UOK_PROMPT_FILE"], sys.argv[1])"""


def task(title: str, out: str, body: str, *, fmt: str = "toml") -> str:
    argv = [sys.executable, "-c", COPY_PROMPT, out]
    if fmt == "toml":
        quoted = ", ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in argv)
        return f'+++\ntitle = "{title}"\ncommand = [{quoted}]\nwrites = ["{out}"]\n+++\n{body}'
    items = "".join(f"  - '{a}'\n" for a in argv)
    return f"---\ntitle: {title}\ncommand:\n{items}writes: [{out}]\n---\n{body}"


def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "tasks").mkdir(parents=True)
    (root / "plan.toml").write_text(PLAN)
    (root / "tasks" / "T01.md").write_text(task("First", "out1.txt", "# Write the parser\n\nUse a grammar.\n"))
    (root / "tasks" / "T02.md").write_text(task("Second", "out2.txt", "Test the parser.\n", fmt="yaml"))
    return root


def events(db: Path) -> list[dict]:
    return [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]


def test_a_markdown_plan_runs_hands_each_task_its_body_and_replays_after_edits(tmp_path: Path):
    root = project(tmp_path)
    db = tmp_path / "events.db"
    r = uok("run", "plan.toml", "--db", str(db), "--quiet", cwd=root)
    assert r.returncode == 0, r.stderr
    assert (root / "out1.txt").read_text() == "# Write the parser\n\nUse a grammar.\n"
    assert (root / "out2.txt").read_text() == "Test the parser.\n"
    rows = events(db)
    [entered] = [e for e in rows if e["type"] == "KernelEntered"]
    assert entered["plan_globs"] == {"tasks/*.md": ["tasks/T01.md", "tasks/T02.md"]}
    assert entered["plan_files"]["tasks/T01.md"] == (root / "tasks" / "T01.md").read_text()
    [compiled] = [e for e in rows if e["type"] == "PlanCompiled"]
    nodes = {n["id"]: n for n in compiled["graph"]["nodes"]}
    assert nodes["T01"]["title"] == "First" and nodes["T01"]["source_file"] == "tasks/T01.md"
    assert nodes["T02"]["depends_on"] == ["T01"] and nodes["T02"]["body"] == "Test the parser.\n"
    # the run replays from what it recorded, whatever the files say now
    (root / "tasks" / "T01.md").write_text("+++\ntimeout = 1\n+++\nchanged\n")
    (root / "tasks" / "T09.md").write_text("+++\n+++\nnew\n")
    replay = uok("replay", "--all", "--db", str(db))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    [shown] = json_lines(uok("plan", "show", "plan.toml", "--json", cwd=root).stdout)
    assert [n["id"] for n in shown["graph"]["nodes"]] == ["T01", "T02", "T09", "complete-slice:M1/S1"]


def test_a_bad_task_file_is_refused_naming_file_and_line_and_nothing_is_written(tmp_path: Path):
    root = project(tmp_path)
    text = (root / "tasks" / "T02.md").read_text().replace("title: Second\n", "title: Second\ntimeout: never\n")
    (root / "tasks" / "T02.md").write_text(text)
    r = uok("run", "plan.toml", "--quiet", cwd=root)
    assert r.returncode == 2
    assert r.stderr.strip() == ("uok: tasks/T02.md:3: task 'T02': timeout must be a number of seconds > 0, got 'never'")
    assert not (root / ".uok").exists()
    v = uok("plan", "validate", str(root / "plan.toml"))
    assert v.returncode == 2 and f"{root}/tasks/T02.md:3: task 'T02'" in v.stderr


def test_a_missing_task_file_is_bad_input(tmp_path: Path):
    root = project(tmp_path)
    (root / "plan.toml").write_text(PLAN + '    [[milestones.slices.tasks]]\n    file = "tasks/absent.md"\n')
    r = uok("plan", "validate", "plan.toml", cwd=root)
    assert r.returncode == 2
    assert r.stderr.strip() == "uok: tasks/absent.md: no such task file"


def test_editing_one_task_body_reruns_exactly_that_task_and_its_dependents(tmp_path: Path):
    root = project(tmp_path)
    (root / "tasks" / "T03.md").write_text(task("Third", "out3.txt", "Document the parser.\n"))
    db = tmp_path / "events.db"
    assert uok("run", "plan.toml", "--db", str(db), "--quiet", cwd=root).returncode == 0
    before = len(events(db))
    # T02's prompt changes, nothing else: T02 and what follows it (T03, the slice's end) run again
    (root / "tasks" / "T02.md").write_text(task("Second", "out2.txt", "Test the parser harder.\n", fmt="yaml"))
    r = uok("run", "plan.toml", "--db", str(db), "--quiet", cwd=root)
    assert r.returncode == 0, r.stderr
    rows = events(db)[before:]
    ran = [e["unit_id"] for e in rows if e["type"] == "TurnStarted"]
    assert ran == ["T02", "T03", "complete-slice:M1/S1"]
    [requeued] = [e for e in rows if e["type"] == "UnitRequeued" and e["unit_id"] == "T02"]
    assert "body_sha256" in requeued["reason"]
    assert (root / "out2.txt").read_text() == "Test the parser harder.\n"
    # a third run with nothing changed runs nothing
    after = len(events(db))
    assert uok("run", "plan.toml", "--db", str(db), "--quiet", cwd=root).returncode == 0
    assert not [e for e in events(db)[after:] if e["type"] == "TurnStarted"]
