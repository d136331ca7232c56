"""The operating model with effect (issue 19, behaviour §5): `uok run
--model-mode` and `[uok] model_mode` pick the run's model mode, the
`[uok.models]` routing table turns it into the model each task is handed
(`UOK_MODEL`), which is recorded and shows in the cost records; a task's
metadata overrides it; `uok steer RUN mode ...` changes it mid-run as a
`ModeChanged` event that replays and shows in status and metrics."""

from __future__ import annotations

import json
from pathlib import Path

from uok.domain import events as ev

from tests.conftest import uok
from tests.run_support import of_type, read_events, run_id_of, start_run, wait_for

CONFIG = """\
[uok]
model_mode = "balanced"

[uok.models]
fast = "claude-haiku-4-5"
balanced = "claude-sonnet-4-6"
deep = "claude-opus-4-1"
"""

# reports usage without naming a model (it is the one handed), and what it was handed
AGENT = (
    "import json,os; open(os.environ['UOK_USAGE_FILE'],'a').write(json.dumps({'input_tokens': 1000}) + chr(10));"
    " open(os.environ['UOK_UNIT_ID'] + '.env','w').write(json.dumps({k: os.environ.get(k) for k in"
    " ('UOK_MODEL','UOK_MODEL_MODE','UOK_WORK_MODE')}))"
)
GATED = "import os,time; t=time.time()\nwhile not os.path.exists('go') and time.time()-t < 20: time.sleep(0.02)\n"


def _argv(src: str) -> str:
    import sys

    return json.dumps([sys.executable, "-c", src])


def plan(root: Path, *, gated: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "uok.toml").write_text(CONFIG)
    first = (GATED if gated else "") + AGENT
    body = f"""[plan]
id = "modes"
[[milestones]]
id = "M1"
[[milestones.slices]]
id = "S1"
[[milestones.slices.tasks]]
id = "a"
command = {_argv(first)}
retries = 0
[[milestones.slices.tasks]]
id = "b"
depends_on = ["a"]
command = {_argv(AGENT)}
retries = 0
[[milestones.slices.tasks]]
id = "c"
depends_on = ["a"]
command = {_argv(AGENT)}
retries = 0
metadata = {{ model_mode = "deep" }}
"""
    path = root / "plan.toml"
    path.write_text(body)
    return path


def handed(root: Path, unit: str) -> dict:
    return json.loads((root / f"{unit}.env").read_text())


def test_model_mode_routes_each_task_to_the_model_the_table_names(tmp_path: Path):
    p = plan(tmp_path / "w")
    db = tmp_path / "m.db"
    r = uok("run", str(p), "--db", str(db), "--model-mode", "fast", "--work-mode", "review", "--json")
    assert r.returncode == 0, r.stderr
    root = p.parent
    assert handed(root, "a") == {"UOK_MODEL": "claude-haiku-4-5", "UOK_MODEL_MODE": "fast", "UOK_WORK_MODE": "review"}
    assert handed(root, "c")["UOK_MODEL"] == "claude-opus-4-1"  # the task's own model mode wins
    events = read_events(db)
    [(_, entered)] = of_type(events, ev.KernelEntered)
    assert (entered.work_mode, entered.model_mode) == ("review", "fast")
    costs = {e.unit_id: e.model for _, e in of_type(events, ev.CostRecorded)}
    assert costs == {"a": "claude-haiku-4-5", "b": "claude-haiku-4-5", "c": "claude-opus-4-1"}
    assert all(e.cost_usd > 0 for _, e in of_type(events, ev.CostRecorded))  # priced as the routed model
    assert {e.unit_id: e.model for _, e in of_type(events, ev.ExecutionFinished)}["b"] == "claude-haiku-4-5"
    # without --model-mode, [uok] model_mode applies
    p2 = plan(tmp_path / "v")
    r = uok("run", str(p2), "--db", str(tmp_path / "n.db"), "--json")
    assert r.returncode == 0, r.stderr
    assert handed(p2.parent, "a")["UOK_MODEL"] == "claude-sonnet-4-6"


def test_a_mode_change_mid_run_is_an_event_that_replays_and_shows_in_status_and_metrics(tmp_path: Path):
    p = plan(tmp_path / "w", gated=True)
    db = tmp_path / "s.db"
    proc = start_run(p, db, "--model-mode", "fast")
    run_id = run_id_of(db)
    wait_for(lambda: of_type(read_events(db), ev.TurnStarted), what="unit a to start")
    r = uok("steer", run_id, "mode", "model_mode=deep", "work_mode=fix", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["outcome"].startswith("mode changed")
    (p.parent / "go").touch()
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    root = p.parent
    assert handed(root, "a")["UOK_MODEL"] == "claude-haiku-4-5"  # dispatched before the change
    assert handed(root, "b") == {"UOK_MODEL": "claude-opus-4-1", "UOK_MODEL_MODE": "deep", "UOK_WORK_MODE": "fix"}
    [(_, changed)] = of_type(read_events(db), ev.ModeChanged)
    assert (changed.previous_model_mode, changed.model_mode, changed.work_mode) == ("fast", "deep", "fix")
    replay = uok("replay", run_id, "--db", str(db))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    status = json.loads(uok("status", "--json", "--db", str(db)).stdout)
    [run] = status["runs"]
    assert (run["model_mode"], run["work_mode"], run["mode_changes"]) == ("deep", "fix", 1)
    assert "uok_mode_transitions_total 1" in uok("metrics", "--db", str(db)).stdout
    bad = uok("steer", run_id, "mode", "colour=red", "--db", str(db))
    assert bad.returncode == 2 and "work_mode=W and model_mode=M" in bad.stderr
