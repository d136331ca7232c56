"""The feedback file: a retried task reads what its earlier attempts left
(failure class, reason, gate rationales, output tails) and the operator's
notes. Real `uok run` subprocesses, real logs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import json_lines, uok
from tests.run_support import run_id_of, start_run, wait_for

FAILS_ONCE = """
import json, os, shutil, sys
attempt = int(os.environ["UOK_ATTEMPT"])
shutil.copy(os.environ["UOK_FEEDBACK_FILE"], f"feedback.{attempt}.json")
if attempt == 1:
    print("compiling...")
    print("ImportError: no module named 'foo'", file=sys.stderr)
    sys.exit(1)
print("fixed")
"""


def _plan(path: Path, tasks: dict[str, str], extra: str = "") -> Path:
    body = '[plan]\nid = "fb"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
    for tid, src in tasks.items():
        esc = src.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        body += f'[[milestones.slices.tasks]]\nid = "{tid}"\ndepends_on = []\n'
        body += f'command = ["{sys.executable}", "-c", "{esc}"]\n{extra}'
    path.write_text(body)
    return path


def test_a_retried_task_reads_why_its_first_attempt_failed(tmp_path: Path, logs):
    plan = _plan(tmp_path / "plan.toml", {"build": FAILS_ONCE})
    db = logs.new()
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    first = json.loads((tmp_path / "feedback.1.json").read_text())
    assert first["schema"] == 1 and first["attempt"] == 1 and first["previous_attempts"] == []
    second = json.loads((tmp_path / "feedback.2.json").read_text())
    assert second["unit_id"] == "build" and second["attempt"] == 2 and second["plan_id"] == "fb"
    [prev] = second["previous_attempts"]
    assert prev["attempt"] == 1 and prev["status"] == "retry" and prev["failure_class"] == "execution"
    assert prev["exit_code"] == 1 and "ImportError: no module named 'foo'" in prev["reason"]
    assert prev["stderr_tail"] == "ImportError: no module named 'foo'\n" and prev["stdout_tail"] == "compiling...\n"
    assert Path(prev["stderr_log"]).read_text() == prev["stderr_tail"]  # the whole output, for a long one


NOTED = """
import json, os, shutil, sys, time
attempt = int(os.environ["UOK_ATTEMPT"])
path = os.environ["UOK_FEEDBACK_FILE"]
if attempt == 1:
    open("started", "w").close()
    while not json.load(open(path))["notes"]:  # a running task polls its feedback for notes
        time.sleep(0.05)
    shutil.copy(path, "feedback.1.json")
    sys.exit(1)
shutil.copy(path, "feedback.2.json")
"""


def test_a_note_for_a_unit_reaches_it_while_it_runs_and_on_its_next_attempt(tmp_path: Path):
    plan = _plan(tmp_path / "plan.toml", {"agent": NOTED, "other": FAILS_ONCE.replace("feedback.", "other.")})
    db = tmp_path / "x.db"
    proc = start_run(plan, db, "--workers", "1")
    run_id = run_id_of(db)
    wait_for((tmp_path / "started").exists, what="the agent to start")
    r = uok("steer", run_id, "note", "--unit", "agent", "use", "the", "v2", "API", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert proc.wait(timeout=60) == 0
    while_running = json.loads((tmp_path / "feedback.1.json").read_text())
    next_attempt = json.loads((tmp_path / "feedback.2.json").read_text())
    for fb in (while_running, next_attempt):
        [note] = fb["notes"]
        assert note["text"] == "use the v2 API" and note["unit_id"] == "agent" and note["run_id"] == run_id
        assert note["from"] == "operator"
    # the note was for 'agent' only
    assert json.loads((tmp_path / "other.2.json").read_text())["notes"] == []


def test_a_note_to_an_ended_run_is_kept_for_the_next_attempt(tmp_path: Path):
    plan = _plan(tmp_path / "plan.toml", {"t": "print('ok')"})
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    run_id = run_id_of(db)
    r = uok("steer", run_id, "note", "--unit", "t", "next time, log more", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    [out] = json_lines(r.stdout)
    assert out["outcome"].startswith("kept for the next attempt of t")
    r = uok("steer", run_id, "note", "--unit", "nope", "x", "--db", str(db))
    assert r.returncode == 2 and "no unit 'nope'" in r.stderr
    assert uok("steer", run_id, "pause", "--unit", "t", "--db", str(db)).returncode == 2


GATED = """
import os
open(f"ran.{os.environ['UOK_ATTEMPT']}", "w").close()
"""


def test_gate_rationales_reach_the_next_attempt(tmp_path: Path):
    check = "import os, sys; sys.exit(0 if os.path.exists('ran.2') else 1)"
    esc = check.replace('"', '\\"')
    extra = f'gates = [{{ id = "verification", command = ["{sys.executable}", "-c", "{esc}"] }}]\n'
    src = (
        GATED
        + "import shutil; shutil.copy(os.environ['UOK_FEEDBACK_FILE'], f\"fb.{os.environ['UOK_ATTEMPT']}.json\")\n"
    )
    plan = _plan(tmp_path / "plan.toml", {"g": src}, extra)
    db = tmp_path / "x.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    [prev] = json.loads((tmp_path / "fb.2.json").read_text())["previous_attempts"]
    assert prev["failure_class"] == "verification"
    assert prev["gates"] and prev["gates"][-1]["gate_id"] == "verification" and prev["gates"][-1]["outcome"] == "fail"
    assert prev["gates"][-1]["rationale"]
