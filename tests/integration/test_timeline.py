"""A run's timeline (projections/timeline.py) read through RunReader: the
fold of the run's own events, cached forward for live pages and folded from
zero for time travel — both must equal a fresh fold of the log up to P."""

from __future__ import annotations

import msgspec
import pytest
from uok.adapters.projection_store import SqliteProjectionStore
from uok.adapters.runread import PositionOutsideLog, RunReader
from uok.adapters.sqlite_store import SqliteEventStore
from uok.projections import registry
from uok.projections.runner import ProjectionRunner
from uok.projections.timeline import TimelineFold

from tests.ui_support import demo_log
from uok.errors import InputError


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    db, run_id, events = demo_log(tmp_path_factory.mktemp("timeline"))
    store = SqliteEventStore(db)
    pstore = SqliteProjectionStore(store)
    yield RunReader(store, ProjectionRunner(pstore, pstore, registry.ALL)), run_id, events
    store.close()


def fresh(run_id, events, upto):
    return TimelineFold(run_id).fold_all((p, e) for p, e in events if p <= upto)


def test_the_fold_sees_every_turn_with_its_parts(demo):
    _reader, run_id, events = demo
    tl = fresh(run_id, events, events[-1][0])
    assert len(tl.turns) == 13 and tl.status == "ok" and tl.plan_id == "demo"
    flaky = tl.turns_of("flaky")
    assert [t.status for t in flaky] == ["retry", "completed"] and [t.attempt for t in flaky] == [1, 2]
    assert flaky[0].execution.exit_code == 1 and "failing on purpose" in flaky[0].execution.stdout_tail
    report = tl.turns_of("report")[0]
    assert [(g.gate_id, g.outcome) for g in report.gates] == [("security", "pass"), ("verification", "pass")]
    assert [p.phase for p in report.phases] == ["dispatch", "unit", "guard", "finalize"]
    assert all(t.finished and t.finished_at >= t.started_at for t in tl.turns.values())


def test_cached_forward_and_from_zero_folds_equal_a_fresh_fold(demo):
    reader, run_id, events = demo
    positions = [p for p, _ in events]
    walk = [*positions[::7], positions[-1], positions[20], positions[5], positions[-1]]  # forward, back, forward
    for p in walk:
        got = msgspec.to_builtins(reader.timeline(run_id, p))
        assert got == msgspec.to_builtins(fresh(run_id, events, p)), p


def test_positions_and_runs_are_checked(demo):
    reader, run_id, events = demo
    with pytest.raises(PositionOutsideLog):
        reader.check(events[-1][0] + 1)
    assert reader.resolve_run("latest", events[-1][0]) == run_id
    with pytest.raises(InputError, match="no run 'x'"):
        reader.resolve_run("x", events[-1][0])
