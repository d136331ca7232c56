"""A fork position inside a transaction is refused, naming the valid positions (issue 11 §9).

The shell appends an observation and its decisions in one transaction; a
fork cut between them used to make ``uok replay --all`` on the fork report a
divergence that never happened (exit 3). Now such a position is exit 2,
naming the nearest boundaries, and a fork at either replays clean."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import uok
from tests.run_support import task_plan


def test_a_fork_inside_a_transaction_is_refused_and_a_boundary_replays(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "pass"), ("c", "pass")], plan_id="fb")
    db = tmp_path / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    run_id = uok("events", "--db", str(db), "--json").stdout.split('"run_id":"')[1].split('"')[0]
    out = tmp_path / "fork.db"
    r = uok("fork", run_id, "--at", "3", "--out", str(out), "--db", str(db))  # between KernelEntered and its queueing
    assert r.returncode == 2, r.stdout + r.stderr
    m = re.search(r"positions (\d+)\.\.(\d+) were appended together .*; fork at (\d+)", r.stderr)
    assert m and int(m.group(1)) <= 3 < int(m.group(2)), r.stderr
    assert not out.exists() and r.stderr.count("uok:") == 1
    boundary = int(m.group(3))
    r = uok("fork", run_id, "--at", str(boundary), "--out", str(out), "--db", str(db))
    assert r.returncode == 0, r.stderr
    r = uok("replay", "--all", "--db", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
