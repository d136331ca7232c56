"""Durable completion end to end (behaviour §13, issue 18's acceptance):
real `uok run` subprocesses and real files. A task whose declared product
is missing fails with class ``artifact`` and is retried once; one that
writes it on its retry completes; the run replays."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import json_lines, uok

# writes its product only from the second attempt on ($UOK_ATTEMPT)
LATE = "import os, pathlib; a = int(os.environ['UOK_ATTEMPT']); a > 1 and pathlib.Path('late.md').write_text('done')"
NEVER = "print('forgot to write it')"


def test_a_missing_product_fails_as_artifact_retried_once(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    plan = root / "plan.toml"
    plan.write_text(
        f"""[plan]
id = "prod"
[[milestones]]
id = "M1"
  [[milestones.slices]]
  id = "S1"
    [[milestones.slices.tasks]]
    id = "late"
    command = ["{sys.executable}", "-c", "{LATE}"]
    produces = ["late.md"]
  [[milestones.slices]]
  id = "S2"
    [[milestones.slices.tasks]]
    id = "never"
    retries = 3
    command = ["{sys.executable}", "-c", "{NEVER}"]
    produces = ["out/*.md"]
"""
    )
    db = tmp_path / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 1, r.stdout + r.stderr  # "never" did not complete
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    failed = [
        (e["unit_id"], e["attempt"], e["failure_class"], e["reason"])
        for e in rows
        if e["type"] == "UnitTransitioned" and e["to_state"] == "failed"
    ]
    assert sorted(failed) == [  # the two slices run in parallel: compare as a set
        ("late", 1, "artifact", "declared product late.md is missing"),
        ("never", 1, "artifact", "declared product no file matches out/*.md"),
        ("never", 2, "artifact", "declared product no file matches out/*.md"),
    ]
    [status] = json_lines(uok("status", "--db", str(db), "--json").stdout)
    units = status["plans"]["prod"]["units"]
    assert units["late"]["state"] == "completed" and units["late"]["attempt"] == 2
    assert units["never"]["state"] == "failed" and units["never"]["attempt"] == 2  # retried once, not 3 times
    finished = [e for e in rows if e["type"] == "ExecutionFinished" and e["unit_id"] == "late"]
    assert [e["products"] for e in finished] == [{"late.md": "missing"}, {"late.md": "present"}]
    assert uok("replay", "--all", "--db", str(db)).returncode == 0


def test_doctor_reports_a_completed_unit_whose_product_disappeared_and_retry_rebuilds_it(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    plan = root / "plan.toml"
    write = "import pathlib; pathlib.Path('report.md').write_text('the report')"
    plan.write_text(
        '[plan]\nid = "keep"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'    [[milestones.slices.tasks]]\n    id = "report"\n    produces = ["report.md"]\n'
        f'    command = ["{sys.executable}", "-c", "{write}"]\n'
    )
    db = tmp_path / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    [clean] = json_lines(uok("doctor", "--db", str(db), "--json").stdout)
    assert not [f for f in clean["diagnosis"]["findings"] if f["code"] == "product-missing"]
    (root / "report.md").unlink()  # the work is gone, the log still says completed
    d = uok("doctor", "--db", str(db), "--json")
    [out] = json_lines(d.stdout)
    [finding] = [f for f in out["diagnosis"]["findings"] if f["code"] == "product-missing"]
    assert out["diagnosis"]["classification"] == "degraded" and d.returncode != 0
    assert finding["subject"] == "keep/report"
    assert finding["message"] == "unit keep/report is recorded completed but its declared product report.md is missing"
    assert finding["recommendation"].startswith(f"`uok retry {plan} report`")
    r = uok("retry", str(plan), "report", "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert (root / "report.md").read_text() == "the report"
    [healed] = json_lines(uok("doctor", "--db", str(db), "--json").stdout)
    assert not [f for f in healed["diagnosis"]["findings"] if f["code"] == "product-missing"]


def test_complete_slice_verifies_its_slices_products(tmp_path: Path):
    root = tmp_path / "project"
    root.mkdir()
    write = "import pathlib; pathlib.Path('x.md').write_text('made')"
    remove = "import pathlib; pathlib.Path('x.md').unlink()"
    plan = root / "plan.toml"
    plan.write_text(
        '[plan]\nid = "cs"\n[[milestones]]\nid = "M1"\n  [[milestones.slices]]\n  id = "S1"\n'
        f'    [[milestones.slices.tasks]]\n    id = "make"\n    produces = ["x.md"]\n'
        f'    command = ["{sys.executable}", "-c", "{write}"]\n'
        f'    [[milestones.slices.tasks]]\n    id = "clobber"\n'
        f'    command = ["{sys.executable}", "-c", "{remove}"]\n'
    )
    db = tmp_path / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 1
    rows = [row["event"] for row in json_lines(uok("events", "--db", str(db), "--json").stdout)]
    observed = [e for e in rows if e["type"] == "ProductsObserved"]
    assert [e["facts"] for e in observed] == [{"x.md": "missing"}] * 2  # checked, retried once
    failed = [(e["unit_id"], e["failure_class"], e["reason"]) for e in rows if e.get("to_state") == "failed"]
    assert failed == [("complete-slice:M1/S1", "artifact", "declared product x.md is missing")] * 2
    [status] = json_lines(uok("status", "--db", str(db), "--json").stdout)
    units = status["plans"]["cs"]["units"]
    assert units["make"]["state"] == "completed" and units["clobber"]["state"] == "completed"
    assert units["complete-slice:M1/S1"]["state"] == "failed"
    assert uok("replay", "--all", "--db", str(db)).returncode == 0
