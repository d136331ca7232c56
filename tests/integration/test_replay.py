"""Deterministic replay: every fixture log replays with no divergence; a
deliberately changed decision rule is caught at its exact first position
with a field diff; missing and extra decisions; the CLI's exit codes."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import uok.domain.plan.compile as plan_module
import uok.domain.plan.graph as graph_module
from uok.adapters.eventlog import EventLog
from uok.adapters.log_store import open_log_store
from uok.domain import events as ev
from uok.domain.kernel import Kernel
from uok.replay.replayer import replay_run, run_ids

from tests.conftest import uok
from tests.helpers import StepClock, plan_toml
from tests.tt_support import FIXTURE_LOGS, event_rows, generated_db, log_of, projection_rows


@pytest.fixture(scope="module")
def fixtures(module_logs) -> dict[str, Path | str]:
    """Every fixture log, on apsw and on PostgreSQL (one set per module and store)."""
    return {name: module_logs.fixture(name) for name in FIXTURE_LOGS}


def first_run(db: Path) -> tuple[EventLog, str]:
    log = log_of(db)
    return log, run_ids(log)[0]


def recorded(log: EventLog) -> list[tuple[int, ev.Event]]:
    return list(log.events())


@pytest.mark.parametrize("name", FIXTURE_LOGS)
def test_every_run_of_every_fixture_log_replays_without_divergence(name: str, fixtures):
    log = log_of(fixtures[name])
    ids = run_ids(log)
    assert ids
    for rid in ids:
        report = replay_run(log, rid)
        assert not report.diverged, (rid, report.divergence)
        assert report.observations >= 1 and report.events_replayed == report.observations + report.decisions
    r = uok("replay", "--all", "--db", str(fixtures[name]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("no divergence") == len(ids)


def test_a_generated_kernel_log_replays_without_divergence(tmp_path: Path, logs):
    log = log_of(logs.copy(generated_db(tmp_path, 8000, seed=11)))
    for rid in run_ids(log):
        assert not replay_run(log, rid).diverged, rid


def test_a_changed_dispatch_order_is_caught_at_the_first_claim(fixtures, monkeypatch):
    log, rid = first_run(fixtures["demo"])
    claims = [
        (p, e)
        for p, e in recorded(log)
        if isinstance(e, ev.UnitTransitioned) and e.to_state == "claimed" and e.run_id == rid
    ]
    first_pos, first = claims[0]
    second = claims[1][1]
    assert second.unit_id != first.unit_id  # two units were dispatched together: order matters

    real = graph_module.select_reactive_dispatch_batch

    def reversed_batch(*args, **kw):
        selected, conflicts = real(*args, **kw)
        return list(reversed(selected)), conflicts

    monkeypatch.setattr(graph_module, "select_reactive_dispatch_batch", reversed_batch)
    report = replay_run(log, rid)
    assert report.diverged
    d = report.divergence
    assert d.position == first_pos and d.kind == "changed"
    assert d.expected_type == d.actual_type == "UnitTransitioned"
    assert d.observation_type == "KernelEntered" and d.observation_position < first_pos
    fields = {f.path: f for f in d.fields}
    assert fields["unit_id"].expected == first.unit_id and fields["unit_id"].actual == second.unit_id
    assert d.unit_id == first.unit_id and d.turn_id == first.turn_id
    assert report.events_replayed == first_pos - report.entered_position  # everything before it reproduced


def test_a_changed_scheduling_tie_break_is_caught_at_plan_compilation(fixtures, monkeypatch):
    """Kahn's tie-break (smallest id first, behaviour §19) flipped to largest first."""
    log, rid = first_run(fixtures["demo"])
    compiled = next(p for p, e in recorded(log) if isinstance(e, ev.PlanCompiled) and e.run_id == rid)

    def largest_first(nodes):
        nodes = list(nodes)
        deps = {n.id: set(n.depends_on) for n in nodes}
        order, done = [], set()
        while len(order) < len(nodes):
            ready = [nid for nid, ds in deps.items() if nid not in done and ds <= done | (ds - set(deps))]
            nxt = max(ready)
            order.append(nxt)
            done.add(nxt)
        return order

    monkeypatch.setattr(plan_module, "topological_order", largest_first)
    d = replay_run(log, rid).divergence
    assert d is not None and d.position == compiled and d.expected_type == "PlanCompiled"
    assert any(f.path.startswith("graph.order[") for f in d.fields)
    assert d.expected["graph"]["order"] != d.actual["graph"]["order"]


class _DropsExit(Kernel):
    def handle(self, obs):
        return [d for d in super().handle(obs) if not isinstance(d, ev.KernelExited)]


class _AddsPhase(Kernel):
    def handle(self, obs):
        out = super().handle(obs)
        if isinstance(obs, ev.KernelEntered):
            out.append(ev.PhaseResult(run_id=obs.run_id, at=obs.at, turn_id="x", phase="guard", action="extra"))
        return out


def test_missing_and_extra_decisions_are_reported(fixtures):
    log, rid = first_run(fixtures["failures"])
    exit_pos = next(p for p, e in recorded(log) if isinstance(e, ev.KernelExited) and e.run_id == rid)
    d = replay_run(log, rid, kernel_factory=_DropsExit).divergence
    assert (
        d.kind == "missing" and d.position == exit_pos and d.expected_type == "KernelExited" and d.actual_type is None
    )
    entered = next(p for p, e in recorded(log) if isinstance(e, ev.KernelEntered) and e.run_id == rid)
    after_entry = next(p for p, e in recorded(log) if p > entered and (e.run_id != rid or type(e).OBSERVED))
    d = replay_run(log, rid, kernel_factory=_AddsPhase).divergence
    assert d.kind == "extra" and d.actual_type == "PhaseResult" and d.expected_type is None
    assert d.position == after_entry  # the slot right after the entry's recorded decisions


def _tampered_log(db: Path | str) -> str:
    """A run whose recorded decision differs from what the kernel decides:
    one UnitTransitioned's reason was changed before it was appended."""
    clock = StepClock()
    store = open_log_store(db, create=True)
    log = EventLog(store)
    k = Kernel()
    obs = ev.KernelEntered(
        run_id="t1",
        at=clock(),
        pid=1,
        plan_path="p.toml",
        workers=1,
        plan_source=plan_toml(("S1", [{"id": "a", "command": ["true"]}])),
    )
    out = k.handle(obs)
    out = [
        ev.UnitTransitioned(**{**{f: getattr(d, f) for f in d.__struct_fields__}, "reason": "edited"})
        if isinstance(d, ev.UnitTransitioned) and d.to_state == "queued"
        else d
        for d in out
    ]
    log.append([obs, *out])
    store.close()
    return "t1"


def test_the_cli_reports_a_divergence_with_exit_3_and_a_field_diff(logs):
    db = logs.new()
    rid = _tampered_log(db)
    r = uok("replay", rid, "--db", str(db))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "DIVERGENCE at position 3" in r.stdout
    assert "reason: expected 'edited', actual 'planned'" in r.stdout
    assert "unit a" in r.stdout
    r = uok("replay", rid, "--db", str(db), "--json")
    assert r.returncode == 3
    rep = orjson.loads(r.stdout)
    assert rep["diverged"] and rep["divergence"]["position"] == 3
    assert rep["divergence"]["fields"] == [{"path": "reason", "expected": "edited", "actual": "planned", "missing": ""}]


def test_replay_of_an_unknown_run_is_a_usage_error(fixtures):
    r = uok("replay", "nope", "--db", str(fixtures["demo"]))
    assert r.returncode == 2 and "no run 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = uok("replay", "--db", str(fixtures["demo"]))
    assert r.returncode == 2


def test_replay_writes_nothing(fixtures):
    db = fixtures["recovery"]
    before = db.read_bytes() if isinstance(db, Path) else (event_rows(db), projection_rows(db))
    log = log_of(db)
    head = log.store.head()
    for rid in run_ids(log):
        replay_run(log, rid)
    assert log.store.head() == head
    log.store.close()
    assert (db.read_bytes() if isinstance(db, Path) else (event_rows(db), projection_rows(db))) == before
