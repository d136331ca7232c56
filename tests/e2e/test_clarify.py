"""Clarify rounds end to end (behaviour §11, issue 18's acceptance): real
`uok run` subprocesses whose tasks call `uok clarify ask`. A fourth
question is refused naming the limit, also after kill -9 of the run and a
restart (the count is the log's); an answer reaches a waiting task."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from tests.conftest import json_lines, uok
from tests.run_support import start_run, wait_for

ASKER = """
import json, os, pathlib, subprocess, sys, time
uok = [sys.executable, "-m", "uok"]
attempt = os.environ["UOK_ATTEMPT"]
plan = json.loads(sys.argv[1])
results = []
for i in range(plan[attempt]):
    r = subprocess.run(uok + ["clarify", "ask", "question " + attempt + "." + str(i)], capture_output=True, text=True)
    results.append([r.returncode, r.stderr.strip()])
pathlib.Path("asked." + attempt + ".json").write_text(json.dumps(results))
if attempt == "1" and "hang" in sys.argv[2:]:
    pathlib.Path("ready").write_text("x")
    time.sleep(120)
"""


def write_plan(root: Path, questions: dict[str, int], *, clarify: str = "true", hang: bool = False) -> Path:
    argv = [sys.executable, "-c", ASKER, json.dumps(questions), *(["hang"] if hang else [])]
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "cl"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'    [[milestones.slices.tasks]]\n    id = "ask"\n    clarify = {clarify}\n    timeout = 120\n'
        f"    command = {json.dumps(argv)}\n"
    )
    return plan


def events(db: Path) -> list[dict]:
    return [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]


LIMIT = "ask: clarify round limit reached: 3 of 3 rounds used (limit 3)"


def test_a_fourth_round_is_refused_with_the_limit_named(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    db = tmp_path / "events.db"
    r = uok("run", str(write_plan(root, {"1": 4})), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    results = json.loads((root / "asked.1.json").read_text())
    assert [rc for rc, _ in results] == [0, 0, 0, 2]
    assert results[3][1] == f"uok: {LIMIT}"
    rows = events(db)
    assert [e["round"] for e in rows if e["type"] == "ClarifyAsked"] == [1, 2, 3]
    [refused] = [e for e in rows if e["type"] == "ClarifyRefused"]
    assert refused["round"] == 4 and refused["limit"] == 3 and refused["question"] == "question 1.3"
    [entered] = [e for e in rows if e["type"] == "KernelEntered"]
    assert refused["run_id"] == entered["run_id"]  # recorded as the task's run's
    sent = [e for e in rows if e["type"] == "MessageSent" and e["topic"] == "clarify"]
    assert [(m["sender"], m["recipient"], m["payload"]["round"]) for m in sent] == [
        ("cl:ask", "operator", 1),
        ("cl:ask", "operator", 2),
        ("cl:ask", "operator", 3),
    ]
    assert uok("replay", "--all", "--db", str(db)).returncode == 0


def test_the_limit_survives_kill_9_and_a_restart(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    db = tmp_path / "events.db"
    plan = write_plan(root, {"1": 2, "2": 2}, hang=True)
    proc = start_run(plan, db)
    try:
        wait_for((root / "ready").exists, timeout=60, what="two rounds asked")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((root / "asked.1.json").read_text()) == [[0, ""], [0, ""]]
    r = uok("run", str(plan), "--db", str(db), "--quiet")  # recovers the killed run, retries the task
    assert r.returncode == 0, r.stderr
    results = json.loads((root / "asked.2.json").read_text())
    assert results == [[0, ""], [2, f"uok: {LIMIT}"]]  # round 3, then refused: rounds 1-2 were not forgotten
    assert [e["round"] for e in events(db) if e["type"] == "ClarifyAsked"] == [1, 2, 3]


def test_an_answer_reaches_the_waiting_task_and_bad_asks_are_refused(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    db = tmp_path / "events.db"
    waiter = (
        "import subprocess, sys, pathlib; r = subprocess.run([sys.executable, '-m', 'uok', 'clarify', 'ask', "
        "'Which database?', '--wait', '60', '--json'], capture_output=True, text=True); "
        "pathlib.Path('answer.json').write_text(r.stdout)"
    )
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "qa"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'    [[milestones.slices.tasks]]\n    id = "ask"\n    clarify = 1\n'
        f"    command = {json.dumps([sys.executable, '-c', waiter])}\n"
        f'    [[milestones.slices.tasks]]\n    id = "plain"\n    command = ["true"]\n'
    )
    proc = start_run(plan, db)
    try:
        wait_for(lambda: db.exists() and any(e["type"] == "ClarifyAsked" for e in events(db)), what="the question")
        a = uok("clarify", "answer", "ask", "PostgreSQL 16", "--plan", "qa", "--db", str(db))
        assert a.returncode == 0, a.stderr
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    [answered] = json_lines((root / "answer.json").read_text())
    assert answered["answer"] == "PostgreSQL 16" and answered["round"] == 1 and answered["limit"] == 1
    # a unit that is not a clarify task, and a unit outside any task context, are refused
    r = uok("clarify", "ask", "why?", "--plan", "qa", "--unit", "plain", "--db", str(db))
    assert r.returncode == 2 and "not a clarify task" in r.stderr
    r = uok("clarify", "ask", "why?", "--db", str(db))
    assert r.returncode == 2 and "needs --plan and --unit" in r.stderr
