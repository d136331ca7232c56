"""What a task is told: the log it runs against (UOK_DB), its run, unit and
turn ids; `uok bus` inside a task uses the task's own log and stamps the
messages with its run and turn. Real `uok run` subprocesses, real logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import json_lines, uok
from tests.run_support import task_plan

TALKER = f"""
import json, os, subprocess, sys
env = {{k: v for k, v in os.environ.items() if k.startswith("UOK_")}}
open("env.json", "w").write(json.dumps(env))
uok = [{sys.executable!r}, "-m", "uok"]
subprocess.run(uok + ["bus", "send", "agent", "planner", "--topic", "done", '{{"files": 2}}'], check=True)
inbox = subprocess.run(uok + ["bus", "inbox", "planner", "--json"], check=True, capture_output=True, text=True)
open("inbox.json", "w").write(inbox.stdout)
"""


def test_bus_inside_a_task_uses_the_runs_log_and_carries_its_ids(tmp_path: Path, logs):
    project = tmp_path / "project"
    project.mkdir()
    plan = task_plan(project / "plan.toml", [("talk", TALKER)])
    db = logs.new()
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=project)
    assert r.returncode == 0, r.stderr
    assert not (project / ".uok" / "events.db").exists()  # no stray log in the plan's directory
    env = json.loads((project / "env.json").read_text())
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    [started] = [e for e in rows if e["type"] == "TurnStarted" and e["unit_id"] == "talk"]
    assert env["UOK_DB"] == str(db)
    assert env["UOK_RUN_ID"] == started["run_id"] and env["UOK_TURN_ID"] == started["turn_id"]
    assert env["UOK_UNIT_ID"] == "talk" and env["UOK_ATTEMPT"] == "1" and env["UOK_PLAN_ID"] == "p"
    [sent] = [e for e in rows if e["type"] == "MessageSent"]
    assert sent["run_id"] == started["run_id"] and sent["turn_id"] == started["turn_id"]
    assert sent["payload"] == {"files": 2}
    # the task's inbox read its own log: it saw the message it had just sent
    [inbox] = json_lines((project / "inbox.json").read_text())
    assert [(m["from"], m["run_id"], m["turn_id"]) for m in inbox["messages"]] == [
        ("agent", started["run_id"], started["turn_id"])
    ]
    # and the run still replays: a task's message is an observation with nothing to decide
    assert uok("replay", started["run_id"], "--db", str(db)).returncode == 0


def test_bus_outside_a_task_carries_no_run(tmp_path: Path):
    db = tmp_path / "x.db"
    assert uok("bus", "send", "a", "b", "{}", "--db", str(db)).returncode == 0
    [m] = json_lines(uok("bus", "inbox", "b", "--json", "--db", str(db)).stdout)[0]["messages"]
    assert m["run_id"] == "" and m["turn_id"] == ""


def test_the_task_environment_is_documented():
    """Every UOK_ variable a task receives is in docs/tasks.md."""
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "tasks.md").read_text()
    source = (ROOT / "adapters" / "executor.py").read_text()
    import re

    names = set(re.findall(r'"(UOK_[A-Z_]+)"', source)) | {"UOK_DB", "TRACEPARENT"}
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert not missing, missing
