"""What the read models' snapshots cost on disk grows with the run, not with
the run times its plan: a chain of many tasks in one plan keeps them to a
small share of the log file.

A ``units`` part holds a whole plan's units, so every snapshot that offers it
rewrites it whole; taken ten times per delta interval (as the small per-run
parts of runs, turns and costs are), a 2,000-task chain's file was 54.5 MB,
44 MB of it units blobs (2026-12-01). One delta per interval keeps them near
the events' own size.
"""

from __future__ import annotations

from pathlib import Path

import apsw

from uok import bootstrap

TASKS = 600


def _plan(tmp_path: Path) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "disk"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "c0"\n\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n\n' for i in range(TASKS)),
        encoding="utf-8",
    )
    return plan


def _bytes(db: Path, sql: str) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(conn.execute(sql).fetchone()[0] or 0)
    finally:
        conn.close()


def test_the_read_models_snapshots_of_a_long_chain_stay_a_small_share_of_the_log(tmp_path: Path):
    db = tmp_path / "events.db"
    prepared = bootstrap.prepare_run(_plan(tmp_path), flags={"max_iterations": 10 * TASKS + 100})
    log = bootstrap.open_log(str(db), create=True)
    result = bootstrap.assemble_runner(log, prepared, workers=1).run()
    log.store.close()
    assert result.exit_code == 0

    head = _bytes(db, "SELECT max(position) FROM events")
    assert _bytes(db, "SELECT min(position) FROM projection_state") == head  # the run's end caught them up
    blobs = _bytes(db, "SELECT sum(length(data)) FROM projection_blobs")
    units = _bytes(db, "SELECT sum(length(data)) FROM projection_blobs WHERE name = 'units'")
    events = _bytes(db, "SELECT sum(length(payload)) FROM events")
    assert units > 0  # snapshots were taken: the bound below is not vacuous
    # measured (600 tasks): snapshot blobs 0.19x the events' payload bytes with ten units deltas per interval and
    # chunks (0.22x with one delta per interval and whole parts); ten per interval with whole parts made them 2.1x,
    # and the run 10x slower (the share grows with the plan's size)
    assert blobs < 0.5 * events, (blobs, units, events)


def test_a_long_plans_units_as_of_past_positions_read_back_from_chunks(tmp_path: Path):
    """The default layout (a plan of more than 64 units stored in snapshots as
    chunks: projections/chunks.py) on a real run: a snapshot names an index,
    and ``uok.read_models`` in a new process answers the state at past
    positions (nearest snapshot, its chunks read and joined, folded forward)
    equal to a fold from zero, the plan's units in the same order."""
    from uok.projections import chunks
    from uok.projections.runner import fold_from_zero
    from uok.projections.units import UnitRuntimeProjection

    import uok

    db = tmp_path / "events.db"
    tasks = 150
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "long"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "c0"\n\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n\n' for i in range(tasks)),
        encoding="utf-8",
    )
    assert uok.run_plan(plan, db=db, workers=1, flags={"max_iterations": 10 * tasks + 100}).exit_code == 0
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        stored = [bytes(r[0]) for r in conn.execute("SELECT data FROM projection_blobs WHERE name = 'units'")]
    finally:
        conn.close()
    assert any(chunks.is_index(b) for b in stored)  # the plan's part was stored as chunks
    with uok.read_models(db, readonly=True) as rm:
        head = rm.head()
        for p in (head // 3, head // 2 + 37, head - 5, head):
            fresh = type(rm.runner)(rm.pstore, rm.pstore, list(rm.runner.projections.values()))
            got = fresh.state_at(p, ["units"])["units"]["long"]
            want = fold_from_zero(rm.pstore, [UnitRuntimeProjection()], p)["units"]["long"]
            assert got == want and list(got.units) == list(want.units), p
