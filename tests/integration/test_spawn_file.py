"""Sub-agents for real: the spawn file a task writes, and a run whose task spawns sub-agents that finish before its dependents (the kernel's rules: tests/unit/test_subagents.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from uok.adapters.eventlog import EventLog
from uok.adapters.spawnfile import read_spawns
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.events import SpawnRequest, SubagentSpawned

from tests.run_support import assert_turns_closed_once, of_type, read_events
from uok.bootstrap import build_runner


def test_spawn_file_parsing_keeps_bad_lines_as_rejections(tmp_path: Path):
    f = tmp_path / "spawn.jsonl"
    f.write_text('{"id": "a", "command": ["x"], "model_mode": "fast"}\n\nnot json\n{"id": "b", "comand": ["x"]}\n')
    reqs = read_spawns(f)
    assert reqs[0] == SpawnRequest(id="a", command=("x",), model_mode="fast")
    assert reqs[1].error.startswith("spawn file line 3") and reqs[2].id == "b" and "comand" in reqs[2].error
    assert read_spawns(tmp_path / "missing") == ()


LEAD = """
import json, os
with open(os.environ["UOK_SPAWN_FILE"], "a") as f:
    for kid, extra in (("k1", {}), ("k2", {"model_mode": "deep"})):
        src = "import os,json; json.dump({k: os.environ.get(k) for k in ('UOK_UNIT_ID','UOK_MODEL_MODE','UOK_WORK_MODE','UOK_PERMISSION_PROFILE')}, open(os.environ['UOK_UNIT_ID'].replace('/','-')+'.json','w'))"
        f.write(json.dumps({"id": kid, "command": [PY, "-c", src], **extra}) + "\\n")
"""


def test_end_to_end_a_task_spawns_sub_agents_that_run_before_its_dependents(tmp_path: Path):
    lead = (
        LEAD.replace("PY", repr(sys.executable)).strip().replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    )
    after = "import os,sys; sys.exit(0 if os.path.exists('lead-k1.json') and os.path.exists('lead-k2.json') else 1)"
    (tmp_path / "plan.toml").write_text(
        '[plan]\nid = "sub"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "lead"\ncommand = ["{sys.executable}", "-c", "{lead}"]\n'
        '[milestones.slices.tasks.metadata]\nmodel_mode = "balanced"\n'
        f'[[milestones.slices.tasks]]\nid = "after"\ncommand = ["{sys.executable}", "-c", "{after}"]\nretries = 0\n'
    )
    db = tmp_path / "s.db"
    with SqliteEventStore(db) as store:
        result = build_runner(EventLog(store), tmp_path / "plan.toml", workers=2, flags={"work_mode": "build"}).run()
    assert result.status == "ok" and result.units_failed == 0, result
    k1 = json.loads((tmp_path / "lead-k1.json").read_text())
    k2 = json.loads((tmp_path / "lead-k2.json").read_text())
    assert k1 == {
        "UOK_UNIT_ID": "lead/k1",
        "UOK_MODEL_MODE": "balanced",
        "UOK_WORK_MODE": "build",
        "UOK_PERMISSION_PROFILE": "standard",
    }
    assert k2["UOK_MODEL_MODE"] == "deep" and k2["UOK_WORK_MODE"] == "build"
    events = read_events(db)
    lineage = [(e.parent_unit, e.child_unit, e.overrides) for _, e in of_type(events, SubagentSpawned)]
    assert lineage == [("lead", "lead/k1", {}), ("lead", "lead/k2", {"model_mode": "deep"})]
    order = [e.unit_id for _, e in of_type(events, ev.TurnStarted)]
    assert order.index("after") > max(order.index("lead/k1"), order.index("lead/k2"))
    assert_turns_closed_once(events, result.run_id)
