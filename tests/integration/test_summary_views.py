"""Summaries, the default of `uok status` and `uok state`: on a history of
many runs, every run open at P and the last few entered, the units of the
open runs' plans and of the latest run's plan, and counts of everything.
A summary is exactly the full view restricted to those runs and plans, and
only those plans' unit records are decoded (the rest stay encoded). The
state of one run (`uok state --run`) reads and folds only that run's parts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import orjson
import pytest
from uok.adapters.cli.commands.state import view_at
from uok.adapters.log_store import open_log_store
from uok.adapters.readmodels import ReadModels
from uok.projections import registry
from uok.projections.lazyparts import LazyParts
from uok.projections.runner import ProjectionRunner, fold_from_zero
from uok.replay.timetravel import LATEST_RUNS, VIEW_PROJECTIONS, run_states, system_view

from tests.conftest import uok
from tests.tt_support import generated_db

VIEWED = [p for p in registry.ALL if p.name in VIEW_PROJECTIONS]


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    """A kernel-generated log of ~30 runs of 40-unit plans (crashes, recoveries, failures)."""
    return generated_db(tmp_path_factory.mktemp("gen"), 20_000, seed=11)


def expected_scope(runs: dict) -> tuple[set[str], set[str]]:
    entered = sorted((r for r in runs.values() if r.entered_position), key=lambda r: r.entered_position)
    opened = [r for r in runs.values() if r.status == "open"]
    return (
        {r.run_id for r in entered[-LATEST_RUNS:]} | {r.run_id for r in opened},
        ({entered[-1].plan_id} if entered else set()) | {r.plan_id for r in opened},
    )


def test_a_summary_is_the_full_view_restricted_and_decodes_only_its_plans(gen: Path, logs):
    db = logs.copy(gen)
    store = open_log_store(db)
    rm = ReadModels(store, snapshot_every=1000)
    rm.catch_up()
    head = rm.head()
    checked = 0
    for p in sorted({0, 1, 400, 999, 1000, 1001, 7345, 13999, head // 2, head - 1, head}):
        reference = fold_from_zero(rm.pstore, VIEWED, p)
        full = system_view(reference, p)
        runs, plans = expected_scope(reference["runs"])
        fresh = ProjectionRunner(rm.pstore, rm.pstore, registry.ALL)  # nothing decoded yet, as in a new process
        states = fresh.state_at(p, VIEW_PROJECTIONS)
        summary = system_view(states, p, summary=True)
        assert summary["runs"] == {k: v for k, v in full["runs"].items() if k in runs}, p
        assert summary["plans"] == {k: v for k, v in full["plans"].items() if k in plans}, p
        assert summary["turns_in_flight"] == [t for t in full["turns_in_flight"] if t["run_id"] in runs], p
        for key in ("breakers", "gates", "costs"):
            assert summary[key] == full[key], (p, key)
        by_status = Counter(r["status"] for r in full["runs"].values())
        assert summary["summary"] == {
            "runs": len(full["runs"]),
            "runs_by_status": dict(sorted(by_status.items())),
            "plans": len(full["plans"]),
        }, p
        units = states["units"]
        if isinstance(units, LazyParts) and len(units) > 10:
            # the shown plans, plus at most the few the fold since the snapshot touched
            assert units.decoded() <= len(plans) + 3 < len(units), (p, units)
            assert states["turns"].decoded() <= len(runs) + 3 < len(states["turns"]), (p, states["turns"])
            checked += 1
        assert states == reference, p  # and, read in full, the same state as a fold from zero
    assert checked >= 3
    store.close()


def test_status_and_state_print_a_summary_and_all_on_demand(gen: Path, logs):
    db = logs.copy(gen)
    full = orjson.loads(uok("status", "--json", "--db", str(db)).stdout)  # --json: everything, as before
    assert "summary" not in full and len(full["runs"]) > LATEST_RUNS + 5 and len(full["plans"]) > 10
    units = sum(len(p["units"]) for p in full["plans"].values())

    r = uok("status", "--db", str(db))
    assert r.returncode == 0, r.stderr
    by_status = Counter(x["status"] for x in full["runs"])
    counts = ", ".join(f"{k}={n:,}" for k, n in sorted(by_status.items()))
    assert f"runs: {len(full['runs'])} ({counts})" in r.stdout
    latest = full["runs"][-1]
    assert latest["run_id"] in r.stdout and full["runs"][0]["run_id"] not in r.stdout
    assert f"plan {latest['plan_id']}: " in r.stdout
    assert "other plans not shown: --all lists every unit" in r.stdout
    assert len(r.stdout.splitlines()) < units // 4

    everything = uok("status", "--all", "--db", str(db))
    assert everything.returncode == 0, everything.stderr
    assert all(x["run_id"] in everything.stdout for x in full["runs"])
    assert sum(line.startswith("  ") and "attempt=" in line for line in everything.stdout.splitlines()) == units
    assert "not shown" not in everything.stdout

    at = full["position"] // 2
    s = uok("state", "--at", str(at), "--db", str(db))
    assert s.returncode == 0, s.stderr
    assert f"state at position {at}" in s.stdout and "shown: the latest and every open one" in s.stdout
    assert "other plans not shown" in s.stdout
    a = uok("state", "--at", str(at), "--all", "--db", str(db))
    assert a.returncode == 0 and "not shown" not in a.stdout and len(a.stdout) > 3 * len(s.stdout)
    view = orjson.loads(uok("state", "--at", str(at), "--json", "--db", str(db)).stdout)
    assert "summary" not in view and all(rid in a.stdout for rid in view["runs"])


def test_the_state_of_one_run_reads_only_its_parts_and_equals_the_full_view(gen: Path, logs):
    """`uok state --run ID` (and the in-process benchmark against LangGraph):
    only that run's record, turns and costs and its plan's units are read
    and folded, and the view is the one a whole-system fold from zero gives."""
    db = logs.copy(gen)
    store = open_log_store(db)
    rm = ReadModels(store, snapshot_every=1000)
    rm.catch_up()
    head = rm.head()
    runs = fold_from_zero(rm.pstore, VIEWED, head)["runs"]
    entered = sorted((r.entered_position, rid) for rid, r in runs.items() if r.entered_position)
    warm = ProjectionRunner(rm.pstore, rm.pstore, registry.ALL, snapshot_every=1000)  # one process, many queries
    for p in sorted({entered[3][0], entered[3][0] + 1, 7000, 7001, head // 2, head}):
        reference = fold_from_zero(rm.pstore, VIEWED, p)
        for rid in [rid for at, rid in entered if at <= p][-2:]:  # the latest run and the one before it
            expected = system_view(reference, p, run=rid)
            for runner in (ProjectionRunner(rm.pstore, rm.pstore, registry.ALL), warm):
                states = run_states(runner.state_at, p, rid, also=("breakers", "gates"))
                assert system_view(states, p, run=rid) == expected, (p, rid)
                assert {name: len(states[name]) for name in ("runs", "turns", "units")} == {
                    "runs": 1,
                    "turns": int(rid in reference["turns"]),
                    "units": int(reference["runs"][rid].plan_id in reference["units"]),  # none before PlanCompiled
                }, (p, rid)
            assert view_at(rm, p, rid) == expected
    store.close()
