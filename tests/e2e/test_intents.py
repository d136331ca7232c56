"""Parallel intent in a real run (issue 19, behaviour §12): two tasks with
write intents `src/**` and `src/app.py` never run at the same time, while a
reader of `docs/` runs alongside the writer of `src/`; the wait is in the
log (`UnitWaiting`), the run replays, and `uok plan show` lists the
conflicts the intents imply."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from uok.domain import events as ev
from uok.domain.eval.suite import to_toml

from tests.conftest import uok
from tests.run_support import of_type, read_events

# Each task marks that it started, then waits (up to 20 s) for the marker of
# the task it must overlap with, if any, and exits 1 if it never came.
TASK = (
    "import os,sys,time; open(sys.argv[1] + '.started','w').close(); want = sys.argv[2:]; t = time.time()\n"
    "while want and not all(os.path.exists(w + '.started') for w in want):\n"
    "    if time.time() - t > 20: sys.exit(1)\n"
    "    time.sleep(0.02)\n"
    "time.sleep(0.2)"
)


def task(tid: str, *, waits_for: tuple[str, ...] = (), **fields) -> dict:
    return {
        "id": tid,
        "command": [sys.executable, "-c", TASK, tid, *waits_for],
        "retries": 0,
        "depends_on": [],
        **fields,
    }


def test_overlapping_write_intents_never_run_together_and_a_docs_reader_runs_beside_a_src_writer(tmp_path: Path):
    tasks = [
        task("all", waits_for=("readdocs",), intents={"write": ["src/**"]}),  # fails unless the reader runs beside it
        task("app", intents={"write": ["src/app.py"]}),
        task("readdocs", waits_for=("all",), intents={"read": ["docs/"]}),
    ]
    plan = tmp_path / "plan.toml"
    plan.write_text(
        to_toml({"plan": {"id": "intents"}, "milestones": [{"id": "M", "slices": [{"id": "S", "tasks": tasks}]}]})
    )
    shown = uok("plan", "show", str(plan))
    assert shown.returncode == 0, shown.stderr
    assert "all <-> app: write intent 'src/**' overlaps write intent 'src/app.py' of app" in shown.stdout
    assert "readdocs" not in shown.stdout.split("intent conflicts", 1)[1]

    db = tmp_path / "i.db"
    r = uok("run", str(plan), "--db", str(db), "--workers", "3", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    events = read_events(db)
    spans: dict[str, list[int]] = {}
    for pos, e in events:
        if isinstance(e, ev.TurnStarted):
            spans[e.unit_id] = [pos, 0]
        elif isinstance(e, ev.TurnFinished):
            spans[e.unit_id][1] = pos
    (a0, a1), (b0, b1), (d0, d1) = spans["all"], spans["app"], spans["readdocs"]
    assert a1 < b0 or b1 < a0  # src/** and src/app.py: one after the other
    assert d0 < a1 and a0 < d1  # docs/ reader and src/ writer: at the same time
    [(_, waiting)] = of_type(events, ev.UnitWaiting)
    assert (waiting.unit_id, waiting.waits_for) == ("app", "all")
    assert "uok_intent_waits_total 1.0" in uok("metrics", "--db", str(db)).stdout
    run_id = json.loads(r.stdout)["run_id"]
    replay = uok("replay", run_id, "--db", str(db))
    assert replay.returncode == 0, replay.stdout + replay.stderr


HOLDER = (
    "import os,subprocess,sys,time\n"
    "r = subprocess.run([sys.executable, '-m', 'uok', 'intent', '--write', 'src/**'], capture_output=True, text=True)\n"
    "open('holder.out','w').write(f'{r.returncode} {r.stdout.strip()}')\n"
    "open('held','w').close(); t = time.time()\n"
    "while not os.path.exists('go') and time.time() - t < 20: time.sleep(0.02)\n"
)
ASKER = (
    "import os,subprocess,sys,time; t = time.time()\n"
    "while not os.path.exists('held') and time.time() - t < 20: time.sleep(0.02)\n"
    "r = subprocess.run([sys.executable, '-m', 'uok', 'intent', '--write', 'src/app.py'], capture_output=True, text=True)\n"
    "open('asker.out','w').write(f'{r.returncode} {r.stdout.strip()}'); open('go','w').close()\n"
)


def test_uok_intent_from_inside_a_task_is_granted_then_an_overlapping_one_is_refused(tmp_path: Path):
    tasks = [
        {"id": "holder", "command": [sys.executable, "-c", HOLDER], "retries": 0, "depends_on": []},
        {"id": "asker", "command": [sys.executable, "-c", ASKER], "retries": 0, "depends_on": []},
    ]
    plan = tmp_path / "plan.toml"
    plan.write_text(
        to_toml({"plan": {"id": "rt"}, "milestones": [{"id": "M", "slices": [{"id": "S", "tasks": tasks}]}]})
    )
    db = tmp_path / "rt.db"
    r = uok("run", str(plan), "--db", str(db), "--workers", "2", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "holder.out").read_text() == "0 granted"
    code, _, said = (tmp_path / "asker.out").read_text().partition(" ")
    assert code == "1" and said == "refused: write intent 'src/app.py' overlaps write intent 'src/**' of holder"
    events = read_events(db)
    assert [e.unit_id for _, e in of_type(events, ev.IntentDeclared)] == ["holder"]
    assert [e.unit_id for _, e in of_type(events, ev.IntentRefused)] == ["asker"]
    replay = uok("replay", json.loads(r.stdout)["run_id"], "--db", str(db))
    assert replay.returncode == 0, replay.stdout + replay.stderr
