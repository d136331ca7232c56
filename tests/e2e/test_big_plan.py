"""A plan of 10,000 tasks completes in one ``uok run`` (issue 12, behaviour
§8): no global loop cap ends a healthy run, and nothing per step grows with
the plan (a display tally that scanned every unit after every step made
this take ~30 minutes). Real ``uok run`` subprocess, real SQLite log: exit
0, every unit completed per ``uok status --json``, and the log replays with
no divergence. The log is written at ``synchronous=NORMAL`` (in WAL, safe
from a crash of the process, not from a power cut): what a task costs in
fsyncs is bench/peers.py's business, this test is about the plan's size."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import uok

TASKS = 10_000
PER_SLICE = 100  # each slice a chain of 100 `true`s; the slices run side by side


def big_plan(path: Path) -> Path:
    out = ['[plan]\nid = "big"\n\n[[milestones]]\nid = "M"\n']
    for s in range(TASKS // PER_SLICE):
        out.append(f'[[milestones.slices]]\nid = "s{s}"\n')
        out.extend(
            f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n'
            for i in range(s * PER_SLICE, (s + 1) * PER_SLICE)
        )
    path.write_text("\n".join(out))
    return path


def test_a_10000_task_plan_of_true_completes_in_one_run(tmp_path: Path):
    plan = big_plan(tmp_path / "plan.toml")
    db = tmp_path / "events.db"
    units = TASKS + TASKS // PER_SLICE  # and each slice's completion unit

    r = uok(
        "run",
        str(plan),
        "--db",
        str(db),
        "--json",
        "--workers",
        "8",
        "--synchronous",
        "NORMAL",
        cwd=tmp_path,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    result = json.loads(r.stdout)
    assert (result["status"], result["units_completed"], result["units_failed"]) == ("ok", units, 0)

    status = json.loads(uok("status", "--json", "--db", str(db), timeout=300).stdout)
    assert [run["status"] for run in status["runs"]] == ["ok"]  # one run did it all
    plan_units = status["plans"]["big"]["units"]
    assert len(plan_units) == units and {u["state"] for u in plan_units.values()} == {"completed"}
    assert all(plan_units[f"t{i}"]["dispatches"] == 1 for i in range(TASKS))

    replay = uok("replay", "--all", "--db", str(db), timeout=600)
    assert replay.returncode == 0 and "no divergence" in replay.stdout, replay.stdout[-2000:] + replay.stderr[-2000:]
