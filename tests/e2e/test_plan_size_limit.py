"""A documented, configurable size limit on plans (issue 11 item 6): a plan
over ``UOK_MAX_PLAN_BYTES`` (default 8 MiB, with its task files) is refused,
exit 2, before anything is parsed or written."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import uok
from tests.run_support import task_plan


def test_a_plan_over_the_limit_is_refused_and_writes_nothing(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")], plan_id="big")
    plan.write_text(plan.read_text() + "# " + "x" * 5000 + "\n")
    db = tmp_path / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet", env={"UOK_MAX_PLAN_BYTES": "4000"})
    assert r.returncode == 2, r.stderr
    assert "over the limit of 4,000" in r.stderr and "UOK_MAX_PLAN_BYTES" in r.stderr
    assert not db.exists()
    r = uok("run", str(plan), "--db", str(db), "--quiet", env={"UOK_MAX_PLAN_BYTES": "100000"})
    assert r.returncode == 0, r.stderr
    assert uok("plan", str(plan), env={"UOK_MAX_PLAN_BYTES": "lots"}).returncode == 2
