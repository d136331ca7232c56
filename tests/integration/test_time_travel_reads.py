"""What a state query reads, on real apsw files: a snapshot's parts stay
undecoded (known by digest only) until looked at, every read model has a
snapshot within a delta interval of any position, and the answers equal a
fold from zero whichever way the parts are looked at."""

from __future__ import annotations

import random
from pathlib import Path

import apsw
import pytest
from uok.domain.log.chain import ChainBroken, link
from uok.projections import registry
from uok.projections.lazyparts import LazyParts
from uok.projections.runner import ProjectionRunner, fold_from_zero
from uok.replay.timetravel import run_states

from tests.conftest import uok
from tests.tt_support import copy_db, generated_db, open_runner


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    return generated_db(tmp_path_factory.mktemp("gen"), 12_000, seed=3)


ONE_RUN = {"runs", "units", "turns", "costs"}  # what a one-run question reads (run_states)
DENSE = ONE_RUN  # ten deltas per interval (a large plan's units part is stored as chunks: projections/chunks.py)


def test_every_read_model_has_a_snapshot_within_a_delta_interval(gen: Path, tmp_path: Path):
    """Metrics included (it had full snapshots only: a query of every read
    model then folded up to a whole snapshot interval, issue 15); the read
    models of a one-run question ten times denser (delta_density)."""
    store, ps, runner = open_runner(copy_db(gen, tmp_path / "log.db"), snapshot_every=2000)
    runner.catch_up()
    head = store.head()[0]
    assert runner.delta_every == 200
    assert {p.name for p in registry.ALL if p.delta_density == 10} == DENSE
    for p in registry.ALL:
        every = 20 if p.name in DENSE else 200
        positions = ps.snapshot_positions(p.name, p.version)
        assert positions == [every * i for i in range(1, head // every + 1)], p.name
        for position in (200, 219, 399, 2199, 5555, head):
            snap = ps.snapshot_manifest(p.name, p.version, position)
            assert snap is not None and position - snap[0] < every, (p.name, position)
    store.close()


def test_parts_known_by_digest_are_read_when_looked_at(gen: Path, tmp_path: Path):
    store, ps, runner = open_runner(copy_db(gen, tmp_path / "log.db"), snapshot_every=2000)
    runner.catch_up()
    head = store.head()[0]
    rng = random.Random(11)
    for position in [2000, 2001, 4321, head - 1] + [rng.randint(1, head) for _ in range(3)]:
        reference = fold_from_zero(ps, registry.ALL, position)
        fresh = ProjectionRunner(ps, ps, registry.ALL)  # nothing decoded yet, as in a new process
        states = fresh.state_at(position, ["units", "runs", "turns"])
        units = states["units"]
        assert isinstance(units, LazyParts)
        assert len(units) == len(reference["units"]) and list(units) == list(units)  # counting reads nothing
        assert set(units) == set(reference["units"])
        before = units.decoded()
        assert before < len(units) or len(units) < 3
        for k in list(reference["units"])[:2]:  # looked up one by one
            assert k in units and units[k] == reference["units"][k]
        assert "no such plan" not in units and units.get("no such plan") is None
        for k in units:  # iterating while looking up (each lookup adds a decoded part)
            assert units[k] == reference["units"][k]
        assert units.decoded() == len(units)
        fresh = ProjectionRunner(ps, ps, registry.ALL)
        again = fresh.state_at(position, ["units", "runs", "turns"])
        assert again == {k: reference[k] for k in ("units", "runs", "turns")}  # items() reads every part at once
    store.close()


def test_a_scoped_query_holds_only_its_parts(gen: Path, tmp_path: Path):
    store, ps, runner = open_runner(copy_db(gen, tmp_path / "log.db"), snapshot_every=2000)
    runner.catch_up()
    head = store.head()[0]
    runs = fold_from_zero(ps, registry.ALL, head)["runs"]
    for position in (3001, head // 2, head):
        reference = fold_from_zero(ps, registry.ALL, position)
        for rid in list(reference["runs"])[-3:]:
            plan = reference["runs"][rid].plan_id
            got = ProjectionRunner(ps, ps, registry.ALL).state_at(
                position, ["runs", "units", "turns"], only={"runs": {rid}, "units": {plan}, "turns": {rid}}
            )
            assert dict(got["runs"].items()) == {rid: reference["runs"][rid]}
            assert dict(got["units"].items()) == {plan: reference["units"][plan]}
            assert list(got["turns"]) == ([rid] if rid in reference["turns"] else [])
    assert runs
    store.close()


def _rewrite(db: Path, position: int, payload: bytes, hash_: bytes | None = None) -> None:
    """Change one stored row behind the store's back, as anyone with write
    access to the file could: its payload, and (``hash_``) its stored hash."""
    conn = apsw.Connection(str(db))
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("UPDATE events SET payload = ? WHERE position = ?", (payload, position))
    if hash_ is not None:
        conn.execute("UPDATE events SET hash = ? WHERE position = ?", (hash_, position))
    conn.execute(SCHEMA_TRIGGER)
    conn.close()


SCHEMA_TRIGGER = (
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'uok: events are append-only'); END"
)


def _altered(payload: bytes) -> bytes:
    """The payload with its first digit changed to another non-zero digit (still valid JSON)."""
    i = next(i for i, b in enumerate(payload) if 48 <= b <= 57)
    return payload[:i] + bytes([49 + (payload[i] - 47) % 9]) + payload[i + 1 :]


def test_an_altered_row_is_refused_by_a_one_run_query(gen: Path, tmp_path: Path):
    """`uok state --at P --run ID` folds the run's rows since the nearest
    snapshot; it checks the chain over every row of that window. A row it
    folds, altered: exit 3 at that row. Altered and re-hashed: exit 3 at the
    next row (whose link no longer matches). A row of the window it does not
    fold, altered: exit 3 too (every row of the window is checked)."""
    clean = copy_db(gen, tmp_path / "clean.db")
    store, ps, runner = open_runner(clean)
    runner.catch_up()  # read models with their snapshots, as `uok` keeps them
    head = store.head()[0]
    position = head // 2 + 60
    runs = fold_from_zero(ps, registry.ALL, position)["runs"]
    run = max(runs.values(), key=lambda r: r.entered_position).run_id
    snap = ps.snapshot_manifest("turns", registry.by_name("turns").version, position)
    assert snap is not None and position - snap[0] < 100
    rows = store.range_rows(snap[0], position)
    folded = next(r for r in rows if r[1] == f"run:{run}" and r[3].startswith("TurnStarted/"))
    unfolded = next(r for r in rows if r[3].startswith(("GateRun/", "PhaseResult/", "ExecutionFinished/")))
    before = store.hash_at(folded[0] - 1)
    store.close()
    args = ("state", "--at", str(position), "--run", run)
    assert uok(*args, "--db", str(clean)).returncode == 0
    rehashed = link(before, folded[0], folded[1], folded[2], folded[3], _altered(folded[4]))
    for name, row, hash_, broken_at in (
        ("folded", folded, None, folded[0]),
        ("rehashed", folded, rehashed, folded[0] + 1),
        ("unfolded", unfolded, None, unfolded[0]),
    ):
        db = copy_db(clean, tmp_path / f"{name}.db")
        _rewrite(db, row[0], _altered(row[4]), hash_)
        r = uok(*args, "--db", str(db))
        assert r.returncode == 3, (name, r.returncode, r.stdout, r.stderr)
        assert f"hash chain broken at position {broken_at}" in r.stderr and "Traceback" not in r.stderr, r.stderr
        store, ps, _runner = open_runner(db)
        with pytest.raises(ChainBroken) as e:
            run_states(ProjectionRunner(ps, ps, registry.ALL).state_at, position, run)
        assert e.value.position == broken_at
        store.close()
