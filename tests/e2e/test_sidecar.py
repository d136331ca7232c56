"""Sidecar work queued during a real run (behaviour §12): a task writes
sidecar requests to its spawn file; they run after it, in queue order, as
the seed's sidecar nodes, while the plan's next task is not held; the run
replays."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.conftest import json_lines, uok

RECORD = "import sys; open('ran.log', 'a').write(sys.argv[1] + chr(10))"


def test_sidecars_queued_by_a_task_run_in_queue_order_and_replay(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    items = [
        {
            "id": "T01",
            "sidecar": "hook",
            "unit_type": "hook/code-review",
            "command": [sys.executable, "-c", RECORD, "hook"],
        },
        {
            "id": "M1",
            "sidecar": "triage",
            "unit_type": "triage-captures",
            "command": [sys.executable, "-c", RECORD, "triage"],
        },
        {"id": "Q1", "sidecar": "quick-task", "command": [sys.executable, "-c", RECORD, "quick"]},
    ]
    lines = "".join(json.dumps(i) + "\n" for i in items)
    queue = f"import os; open(os.environ['UOK_SPAWN_FILE'], 'a').write({lines!r})"
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "side"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'    [[milestones.slices.tasks]]\n    id = "build"\n    command = {json.dumps([sys.executable, "-c", queue])}\n'
        f'    [[milestones.slices.tasks]]\n    id = "test"\n    command = {json.dumps([sys.executable, "-c", RECORD, "test"])}\n'
    )
    db = tmp_path / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", "--workers", "2")
    assert r.returncode == 0, r.stdout + r.stderr
    ran = (root / "ran.log").read_text().split()
    assert [x for x in ran if x != "test"] == ["hook", "triage", "quick"]  # the queue's order
    assert "test" in ran
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    queued = [e for e in rows if e["type"] == "SidecarQueued"]
    assert [e["node"]["id"] for e in queued] == [
        "sidecar-0000:hook:hook/code-review:T01",
        "sidecar-0001:triage:triage-captures:M1",
        "sidecar-0002:quick-task:quick-task:Q1",
    ]
    assert [e["node"]["kind"] for e in queued] == ["hook", "verification", "team-worker"]
    [status] = json_lines(uok("status", "--db", str(db), "--json").stdout)
    assert all(u["state"] == "completed" for u in status["plans"]["side"]["units"].values())
    assert len(status["plans"]["side"]["units"]) == 6  # build, test, complete-slice and three sidecars
    assert uok("replay", "--all", "--db", str(db)).returncode == 0
