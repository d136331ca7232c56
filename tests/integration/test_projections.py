"""The projection runner on real logs, apsw files and PostgreSQL schemas
alike (the ``logs`` fixture): tracked positions, batched commits, catch-up
after more appends, version changes, a different log at the same path,
snapshots (with a hypothesis property: snapshot + fold == fold from zero),
and `uok projections status|rebuild`."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from uok.adapters.eventlog import EventLog
from uok.domain import events as ev
from uok.projections import registry
from uok.projections.lazyparts import LazyParts, PartsGone
from uok.projections.runner import ProjectionRunner, fold_from_zero
from uok.projections.units import UnitRuntimeProjection

from tests.conftest import uok
from tests.tt_support import copy_db, generated_db, open_runner, projection_rows


@pytest.fixture(scope="module")
def gen20k(tmp_path_factory) -> Path:
    """A generated apsw log, copied into each test's own log (file or schema)."""
    return generated_db(tmp_path_factory.mktemp("gen"), 20_000)


def test_catch_up_tracks_positions_and_equals_a_fold_from_zero(gen20k: Path, logs):
    db = logs.copy(gen20k)
    store, ps, runner = open_runner(db, batch=3000, snapshot_every=2500)
    head = store.head()[0]
    assert runner.catch_up() == head
    status = {s.name: s for s in runner.status()}
    assert all(s.position == head and s.lag == 0 and not s.rebuilding for s in status.values())
    assert runner.delta_every == 250  # a delta snapshot every tenth of the interval, a full one every 2500
    # ... and ten per delta interval for the parts a one-run question needs (runs, units, turns,
    # costs; a large plan's units part is stored as chunks, so a delta does not rewrite the plan)
    assert status["runs"].snapshots == head // 25 and status["gates"].snapshots == head // 250
    assert ps.snapshot_positions("units", UnitRuntimeProjection.version) == [25 * i for i in range(1, head // 25 + 1)]
    assert ps.full_manifest("units", UnitRuntimeProjection.version, 2500) is not None
    assert ps.full_manifest("units", UnitRuntimeProjection.version, 2525) is None  # a delta
    reference = fold_from_zero(ps, registry.ALL, head)
    assert runner.states() == reference
    units = reference["units"]
    assert sum(len(p.units) for p in units.values()) > 500
    assert all(u.state == "notified" for p in units.values() for u in p.units.values() if u.notified)
    # a fresh runner (a new process) loads the committed parts, not a refold
    store.close()
    store2, _ps2, runner2 = open_runner(db)
    assert runner2.states() == reference
    store2.close()


def test_catch_up_folds_only_what_was_appended_since(logs):
    db = logs.fixture("failures")
    store, _ps, runner = open_runner(db)
    before = runner.states()
    head = store.head()[0]
    runs_before = dict(before["runs"])
    # another kernel entry arrives (a run of another plan), then catch up
    log = EventLog(store)
    from datetime import UTC, datetime

    log.append(
        [
            ev.KernelEntered(
                run_id="late", at=datetime(2026, 3, 1, tzinfo=UTC), pid=1, plan_path="x", plan_source="", workers=1
            )
        ]
    )
    assert {s.name: s.lag for s in runner.status()}["runs"] == 1
    assert runner.catch_up() == head + 1
    after = runner.states()["runs"]
    assert set(after) == set(runs_before) | {"late"} and after["late"].status == "open"
    assert after["late"].entered_position == head + 1
    store.close()


def test_a_new_projection_version_is_rebuilt_from_zero(logs):
    db = logs.fixture("demo")
    store, ps, runner = open_runner(db)
    v1 = runner.states()["units"]

    old = UnitRuntimeProjection.version

    class UnitsNext(UnitRuntimeProjection):
        version = old + 1

    r2 = ProjectionRunner(ps, ps, [UnitsNext()])
    assert {s.name: s.stored_version for s in r2.status()}["units"] == old
    assert r2.states()["units"] == v1  # refolded from zero under the next version
    assert ps.heads()["units"].version == old + 1 and ps.snapshot_positions("units", old) == []
    store.close()


def test_a_different_log_at_the_same_path_is_not_trusted(logs):
    """The stored position names an event hash; another log there resets the model."""
    db = logs.fixture("demo")
    store, ps, runner = open_runner(db)
    runner.catch_up()
    h = ps.heads()["units"]
    mark = "%s" if logs.is_postgres else "?"
    with store.transaction() as conn:  # simulate: the model claims a hash this log does not have
        conn.execute(f"UPDATE projection_state SET hash = {mark} WHERE name = 'units'", (b"\x00",))
    fresh = ProjectionRunner(ps, ps, registry.ALL)
    assert fresh.states()["units"] == fold_from_zero(ps, registry.ALL, h.position)["units"]
    store.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    events=st.integers(50, 1500),
    delta=st.integers(1, 200),
    deltas=st.integers(1, 6),
    batch=st.integers(1, 700),
    chunk=st.sampled_from([(1, 0), (2, 3), (3, 10), (7, 1), (32, 64)]),
    data=st.data(),
)
def test_snapshot_plus_fold_equals_fold_from_zero(seed, events, delta, deltas, batch, chunk, data):
    """Full snapshots every ``delta * deltas`` events and delta snapshots
    (projections/manifests.py) every ``delta`` between them (none if
    ``deltas`` is 1); the read models caught up in two steps by two runners
    (two processes: the second resumes from the first's committed state and
    stored full snapshot). The state at any position equals the fold from
    zero, and the snapshots written are byte for byte those of one catch-up
    in a single step. ``units`` parts of more than a drawn number of units are
    stored in snapshots as chunks of a drawn number of units
    (projections/chunks.py; the generated plans have 40 units, the default
    layout chunks plans of more than 64)."""
    every = delta * deltas
    size, over = chunk
    projections = [UnitRuntimeProjection(chunk=size, chunk_over=over) if p.name == "units" else p for p in registry.ALL]
    with tempfile.TemporaryDirectory() as tmp:
        db = generated_db(Path(tmp), events, seed=seed)
        straight = copy_db(db, Path(tmp) / "straight.db")
        kw = {
            "batch": batch,
            "snapshot_every": every,
            "delta_every": delta,
            "page": max(1, batch // 2 + 1),
            "projections": projections,
        }
        store, ps, runner = open_runner(db, **kw)
        head = store.head()[0]
        stop = data.draw(st.integers(0, head), label="caught up to")
        first = data.draw(st.integers(0, stop), label="first caught up to (another process)")
        _s, _p, earlier = open_runner(db, **kw)
        earlier.catch_up(upto=first)
        _s.close()
        runner.catch_up(upto=stop)  # snapshots below `stop`, committed state at `stop`
        positions = data.draw(st.lists(st.integers(0, head), min_size=1, max_size=6), label="positions")
        for p in positions:
            assert runner.state_at(p) == fold_from_zero(ps, registry.ALL, p), p
        fresh = ProjectionRunner(ps, ps, projections)  # another process: nothing read or decoded yet
        for p in positions:  # one plan's units, as a one-run question reads them (a scoped query)
            units = fold_from_zero(ps, [UnitRuntimeProjection()], p)["units"]
            for plan in list(units)[-2:]:
                got = fresh.state_at(p, ["units"], only={"units": {plan}})["units"]
                assert dict(got.items()) == {plan: units[plan]}, (p, plan)
        store.close()
        s2, _p2, one_go = open_runner(straight, **kw)
        one_go.catch_up(upto=stop)
        s2.close()
        a, b = projection_rows(db), projection_rows(straight)
        assert a["snapshots"] == b["snapshots"] and a["blobs"] == b["blobs"] and a["parts"] == b["parts"]


def test_projections_status_and_rebuild_cli(logs):
    db = logs.fixture("recovery")
    r = uok("projections", "status", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    rows = {p["name"]: p for p in orjson.loads(r.stdout)["projections"]}
    head = rows["units"]["head"]
    assert rows["units"]["state"] == "never built" and rows["units"]["lag"] == head
    r = uok("projections", "rebuild", "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert f"to position {head}" in r.stdout
    r = uok("projections", "status", "--db", str(db))
    assert r.returncode == 0 and "up to date" in r.stdout and "Traceback" not in r.stderr
    r = uok("projections", "rebuild", "nosuch", "--db", str(db))
    assert r.returncode == 2 and "no projection named 'nosuch'" in r.stderr
    r = uok("projections", "rebuild", "units", "--db", str(db), "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["projections"] == ["units"]


def test_rebuild_killed_mid_batch_resumes_and_ends_identical(tmp_path_factory, logs):
    """kill -9 (SIGKILL, from inside at an exact point) after two committed
    batches and part of the third; running rebuild again resumes from the
    last commit and ends with exactly the read models of an uninterrupted
    rebuild: the same parts, positions, snapshot manifests and blobs."""
    base = generated_db(tmp_path_factory.getbasetemp() / "big", 120_000, seed=3)
    killed, clean = logs.copy(base), logs.copy(base)
    args = ("projections", "rebuild", "--batch", "20000", "--snapshot-every", "7000", "--quiet")
    r = uok(*args, "--db", str(killed), env={"UOK_REBUILD_KILL_AFTER_BATCHES": "2"})
    assert r.returncode == -9, (r.returncode, r.stderr)
    status = {
        p["name"]: p
        for p in orjson.loads(uok("projections", "status", "--db", str(killed), "--json").stdout)["projections"]
    }
    assert {p["position"] for p in status.values()} == {40_000}  # two batches committed, the third lost
    assert all(p["rebuilding"] for p in status.values())
    r = uok(*args, "--db", str(killed))
    assert r.returncode == 0, r.stderr
    assert "resumed an interrupted rebuild at position 40000" in r.stdout
    r = uok(*args, "--db", str(clean))
    assert r.returncode == 0, r.stderr
    a, b = projection_rows(killed), projection_rows(clean)
    assert a["state"] == b["state"] and not a["state"][0][4]  # not rebuilding any more
    assert a["parts"] == b["parts"]
    assert a["snapshots"] == b["snapshots"]
    assert a["blobs"] == b["blobs"]
    # and a rebuild with --restart starts over from zero
    r = uok(*args, "--restart", "--db", str(killed))
    assert r.returncode == 0 and "resumed" not in r.stdout
    assert projection_rows(killed)["parts"] == b["parts"]


def test_state_at_uses_snapshots_it_would_otherwise_refold(gen20k: Path, logs):
    db = logs.copy(gen20k)
    store, ps, runner = open_runner(db, snapshot_every=1000)
    runner.catch_up()
    rng = random.Random(5)
    head = store.head()[0]
    for p in [rng.randint(1, head) for _ in range(5)] + [1000, 1001, head]:
        snap = ps.snapshot_at_or_before("units", UnitRuntimeProjection.version, p)
        assert snap is not None or p < 1000
        assert runner.state_at(p) == fold_from_zero(ps, registry.ALL, p)
    store.close()


def test_a_part_dropped_by_a_rebuild_meanwhile_is_an_error_not_a_wrong_state(gen20k: Path, logs):
    """Time travel reads a snapshot's parts when they are looked at; if a
    rebuild dropped the snapshots in between, the reader is told to ask
    again (PartsGone, exit 1) instead of being handed a partial state."""
    db = logs.copy(gen20k)
    store, ps, runner = open_runner(db)
    runner.catch_up()
    states = ProjectionRunner(ps, ps, registry.ALL).state_at(5000, ["units", "runs"])
    assert isinstance(states["units"], LazyParts) and states["units"].decoded() < len(states["units"])
    first = next(iter(states["runs"].values()))  # runs: read now, before the rebuild
    ProjectionRunner(ps, ps, registry.ALL).reset(["units"])  # a rebuild begins: snapshots and blobs dropped
    with pytest.raises(PartsGone):
        dict(states["units"].items())
    assert next(iter(states["runs"].values())) is first
    store.close()
