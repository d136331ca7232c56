"""What a state query reads, on real apsw files: a snapshot's parts stay
undecoded (known by digest only) until looked at, every read model has a
snapshot within a delta interval of any position, and the answers equal a
fold from zero whichever way the parts are looked at."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from uok.projections import registry
from uok.projections.lazyparts import LazyParts
from uok.projections.runner import ProjectionRunner, fold_from_zero

from tests.tt_support import copy_db, generated_db, open_runner


@pytest.fixture(scope="module")
def gen(tmp_path_factory) -> Path:
    return generated_db(tmp_path_factory.mktemp("gen"), 12_000, seed=3)


def test_every_read_model_has_a_snapshot_within_a_delta_interval(gen: Path, tmp_path: Path):
    """Metrics included (it had full snapshots only: a query of every read
    model then folded up to a whole snapshot interval, issue 15)."""
    store, ps, runner = open_runner(copy_db(gen, tmp_path / "log.db"), snapshot_every=2000)
    runner.catch_up()
    head = store.head()[0]
    assert runner.delta_every == 200
    for p in registry.ALL:
        positions = ps.snapshot_positions(p.name, p.version)
        assert positions == [200 * i for i in range(1, head // 200 + 1)], p.name
    for position in (200, 399, 2199, 5555, head):
        for p in registry.ALL:
            snap = ps.snapshot_manifest(p.name, p.version, position)
            assert snap is not None and position - snap[0] < 200, (p.name, position)
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
