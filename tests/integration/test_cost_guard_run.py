"""The cost guard in a real run: a task reporting expensive usage through $UOK_USAGE_FILE is stopped (the rules: tests/unit/test_cost_guard.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import uok


def test_a_task_reporting_expensive_usage_is_stopped_by_the_cost_guard(tmp_path: Path):
    plan_dir = tmp_path / "p"
    plan_dir.mkdir()
    report = (
        "import json,os; open(os.environ['UOK_USAGE_FILE'],'a').write(json.dumps("
        "{'model':'claude-opus-4-6','input_tokens':500000,'output_tokens':20000})+'\\n')"
    )
    (plan_dir / "plan.toml").write_text(
        '[plan]\nid = "cost"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "pricey"\ncommand = ["{sys.executable}", "-c", {orjson.dumps(report).decode()}]\n'
    )
    db = tmp_path / "c.db"
    r = uok("run", str(plan_dir / "plan.toml"), "--db", str(db), "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr
    rows = [orjson.loads(line)["event"] for line in uok("events", "--db", str(db), "--json").stdout.splitlines()]
    [cost] = [e for e in rows if e["type"] == "CostRecorded"]
    assert cost["model"] == "claude-opus-4-6" and cost["cost_usd"] == pytest.approx(3.0)
    [g] = [e for e in rows if e["type"] == "GateRun"]
    assert g["gate_id"] == "cost-guard" and g["outcome"] == "fail" and "consider claude-sonnet-4-6" in g["rationale"]
    status = orjson.loads(uok("status", "--db", str(db), "--json").stdout)
    unit = status["plans"]["cost"]["units"]["pricey"]
    assert unit["state"] == "failed" and unit["attempt"] == 1  # not retried
