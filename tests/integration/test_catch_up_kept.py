"""The read models' catch-up at the end of a run folds what the run appended
without reading it back (issue 15, CPU per task), and only when the log
holds exactly that.

The store keeps the rows its connection appends while a run lasts
(``SqliteEventStore.keep_appended``); the catch-up's record source takes
them in place of a read and a hash per row once they chain from the
verified hash before them and the log's hash at their end is theirs
(``ChainedRecordSource._kept``). Anything else is read from the log and
verified, as before.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from uok.adapters.eventlog import EventLog
from uok.adapters.readmodels import ReadModels
from uok.adapters.record_source import ChainedRecordSource
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.log.chain import ChainBroken

from uok import bootstrap

AT = datetime(2026, 12, 1, tzinfo=UTC)
RANGE_READ = "SELECT position, stream, version, topic, payload, hash FROM events WHERE position > ? AND position <= ?"


def chain_plan(path: Path, tasks: int) -> Path:
    path.write_text(
        '[plan]\nid = "k"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n' for i in range(tasks))
    )
    return path


def test_a_runs_end_folds_its_own_appends_unread_into_the_same_read_models_as_a_rebuild(tmp_path: Path):
    db = tmp_path / "e.db"
    log = bootstrap.open_log(str(db), create=True, synchronous="FULL")
    runner = bootstrap.assemble_runner(log, bootstrap.prepare_run(chain_plan(tmp_path / "plan.toml", 6)), workers=1)
    assert runner.checkpoints is not None
    after_run = runner.checkpoints.after_run
    reads: list[str] = []

    def counted() -> None:  # the statements of the end's catch-up
        def trace(_cursor, sql: str, _bindings) -> bool:
            if sql.startswith(RANGE_READ):
                reads.append(sql)
            return True

        log.store.connection.exec_trace = trace
        try:
            after_run()
        finally:
            log.store.connection.exec_trace = None

    runner.checkpoints.after_run = counted  # type: ignore[method-assign]
    assert runner.run().exit_code == 0
    caught = ReadModels(log.store).runner
    assert all(st.lag == 0 for st in caught.status())  # caught up to the head ...
    assert reads == []  # ... without reading back a row of the run
    after = {name: msgspec.to_builtins(state) for name, state in caught.states().items()}
    log.store.close()

    copy = tmp_path / "copy.db"  # the same log, every read model rebuilt from the log
    shutil.copy(db, copy)
    with SqliteEventStore(copy) as store:
        rebuilt = ReadModels(store).runner
        rebuilt.rebuild()
        assert {name: msgspec.to_builtins(state) for name, state in rebuilt.states().items()} == after


def closes(n: int) -> list[ev.Event]:
    return [ev.TurnClosed(run_id="r", at=AT, turn_id=f"r:{i}") for i in range(n)]


def scanned(source: ChainedRecordSource, upto: int) -> list[tuple[int, str, bytes]]:
    return [row for _, rows in source.scan(0, upto, page=3) for row in rows]


def test_kept_rows_are_folded_only_while_the_log_holds_them(tmp_path: Path):
    db = tmp_path / "a.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as reader:
        log = EventLog(store)
        log.append(closes(2))  # before keeping: read from the log
        store.keep_appended(True)
        log.append(closes(3))
        log.append(closes(4))
        head = store.head()[0]
        from_log = scanned(ChainedRecordSource(reader), head)  # verified from the log (another connection) ...
        source = ChainedRecordSource(store)
        reads: list[str] = []
        store.connection.exec_trace = lambda _c, sql, _b: reads.append(sql) or True
        assert scanned(source, head) == from_log  # ... and from what was kept: the same rows
        assert [sql for sql in reads if sql.startswith(RANGE_READ)] == [RANGE_READ + " ORDER BY position"]
        store.connection.exec_trace = None
        # the log's hash at the end of the kept rows is no longer the one computed for them:
        # the range is read from the log and verified, and the damage found
        store.connection.execute("DROP TRIGGER events_no_update")
        store.connection.execute("UPDATE events SET hash = zeroblob(32) WHERE position = ?", (head,))
        with pytest.raises(ChainBroken):
            scanned(ChainedRecordSource(store), head)


def test_rows_appended_by_another_connection_restart_what_is_kept(tmp_path: Path):
    db = tmp_path / "b.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        store.keep_appended(True)
        EventLog(store).append(closes(2))
        EventLog(other).append(closes(2))  # not this connection's: a gap in what it appended
        EventLog(store).append(closes(3))
        kept = store.appended_rows()
        assert kept is not None
        assert [r[0] for r in kept[1]] == [5, 6, 7]  # only the contiguous rows after the gap
        assert kept[0] == store.hash_at(4)
        rows = scanned(ChainedRecordSource(store), 7)
        assert [p for p, _, _ in rows] == list(range(1, 8))
        store.keep_appended(False)
        assert store.appended_rows() is None


def test_only_the_last_rows_are_kept_and_they_still_chain(tmp_path: Path, monkeypatch):
    from uok.adapters import sqlite_store

    monkeypatch.setattr(sqlite_store, "KEEP_MAX", 6)
    db = tmp_path / "c.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as reader:
        store.keep_appended(True)
        for n in (4, 3, 2):
            EventLog(store).append(closes(n))
        kept = store.appended_rows()
        assert kept is not None
        positions = [r[0] for r in kept[1]]
        assert len(positions) <= 6 and positions == list(range(positions[0], 10))  # the last ones, contiguous
        assert kept[0] == store.hash_at(positions[0] - 1)  # and the hash before them
        assert scanned(ChainedRecordSource(store), 9) == scanned(ChainedRecordSource(reader), 9)
