"""The apsw event log's own concerns: its files (private, foreign or
damaged ones refused), a full disk, and a working eventsourcing persistence
module. What both stores guarantee (gapless positions, append-only, the
chain, several processes) is in tests/integration/test_store_contract.py."""

from __future__ import annotations

import os
import queue
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path
from uuid import UUID

import apsw
import pytest
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, StoredEvent, Tracking
from eventsourcing.projection import Projection, ProjectionRunner
from uok.adapters.es_apsw import ApswFactory, ApswTrackingRecorder
from uok.adapters.sqlite_store import NotAnEventLogError, SqliteEventStore, StoreCorruptError, StoreFullError
from uok.domain.log import errors as store_errors
from uok.domain.log.store import NewRecord

ROOT = Path(__file__).resolve().parents[2]


def rec(stream: str, version: int, payload: bytes = b'{"x": 1}', topic: str = "Thing/v1") -> NewRecord:
    return NewRecord(stream, version, topic, payload)


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteEventStore(tmp_path / "log" / "uok.db")
    yield s
    s.close()


APPENDER = """
import os, sys, time
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log.store import NewRecord
path, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = SqliteEventStore(path)
while not os.path.exists(go):
    time.sleep(0.001)
for v in range(1, n + 1):
    store.append([NewRecord(name, v, "Tick/v1", b'{"n": %d}' % v)])
store.close()
"""


def run_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stderr=subprocess.PIPE)


# -- append / read -------------------------------------------------------------


def test_conflict_raises_the_store_integrity_error_and_writes_nothing(store: SqliteEventStore) -> None:
    store.append([rec("a", 1), rec("a", 2)])
    with pytest.raises(store_errors.IntegrityError, match=r"'a'.* 2"):
        store.append([rec("b", 1), rec("a", 2), rec("c", 1)])
    with pytest.raises(store_errors.IntegrityError, match=r"'d'.*version 1"):
        store.append([rec("d", 1), rec("d", 1)])
    assert store.count() == 2 and store.stream_version("b") == 0
    assert not store.connection.in_transaction
    assert store.append([rec("b", 1)]) == [3]
    assert store.verify_chain()[0] == 3


@pytest.mark.parametrize("statement", ["UPDATE events SET payload = x'00'", "DELETE FROM events"])
def test_update_and_delete_refused_through_any_connection(store: SqliteEventStore, statement: str) -> None:
    store.append([rec("a", 1), rec("a", 2)])
    before = list(store.read())
    side = apsw.Connection(str(store.path))
    with pytest.raises(apsw.ConstraintError, match="append-only"):
        side.execute(statement)
    side.close()
    std = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        std.execute(statement)
    std.close()
    assert list(store.read()) == before


# -- files ---------------------------------------------------------------------


def test_database_files_are_owner_only(store: SqliteEventStore) -> None:
    store.append([rec("a", 1)])
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        side = Path(str(store.path) + suffix)
        if side.exists():
            assert stat.S_IMODE(os.stat(side).st_mode) == 0o600


def test_non_sqlite_and_truncated_files_are_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreCorruptError, match=str(junk)):
        SqliteEventStore(junk)

    good = tmp_path / "good.db"
    with SqliteEventStore(good) as s:
        for i in range(40):
            s.append([rec(f"s{i}", v, b"x" * 400) for v in range(1, 21)])
    data = good.read_bytes()
    page = 4096
    for name, size in (("odd", len(data) - 100), ("aligned", (len(data) // page // 2) * page), ("tiny", 50)):
        broken = tmp_path / f"{name}.db"
        broken.write_bytes(data[:size])
        with pytest.raises(StoreCorruptError, match=str(broken)):
            SqliteEventStore(broken)


def test_foreign_database_missing_dir_and_bad_options(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    c = sqlite3.connect(foreign)
    c.execute("CREATE TABLE customers (id INTEGER)")
    c.commit()
    c.close()
    with pytest.raises(NotAnEventLogError, match="not a uok event log"):
        SqliteEventStore(foreign)
    with pytest.raises(FileNotFoundError, match="no event log at"):
        SqliteEventStore(tmp_path / "missing" / "x.db", readonly=True)
    with pytest.raises(ValueError, match="'OFF'"):
        SqliteEventStore(tmp_path / "x.db", synchronous="OFF")
    created = tmp_path / "a" / "b" / "x.db"
    SqliteEventStore(created).close()
    with SqliteEventStore(created, readonly=True) as ro:
        assert ro.count() == 0
        with pytest.raises(store_errors.OperationalError, match="readonly"):
            ro.append([rec("a", 1)])


def test_disk_full_writes_nothing_and_recovers(store: SqliteEventStore) -> None:
    store.append([rec("a", v) for v in range(1, 11)])
    pages = store.connection.execute("PRAGMA page_count").fetchall()[0][0]
    store.connection.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(StoreFullError, match="no event was written"):
        store.append([rec("big", v, b"y" * 4000) for v in range(1, 21)])
    assert store.count() == 10 and not store.connection.in_transaction
    store.connection.execute("PRAGMA max_page_count = 1073741823")
    assert store.append([rec("big", v, b"y" * 4000) for v in range(1, 21)]) == list(range(11, 31))
    assert store.verify_chain()[0] == 30


# -- eventsourcing on the same log ------------------------------------------------


class Dog(Aggregate):
    @event("Registered")
    def __init__(self, name: str) -> None:
        self.name = name
        self.tricks: list[str] = []

    @event("TrickAdded")
    def add_trick(self, trick: str) -> None:
        self.tricks.append(trick)


class DogSchool(Application[UUID]):
    def register_dog(self, name: str) -> UUID:
        dog = Dog(name)
        self.save(dog)
        return dog.id

    def add_trick(self, dog_id: UUID, trick: str) -> None:
        dog: Dog = self.repository.get(dog_id)
        dog.add_trick(trick)
        self.save(dog)


class TrickCounts(ApswTrackingRecorder):
    """A materialised view: trick counts in its own table, same file."""

    def __init__(self, store: SqliteEventStore) -> None:
        super().__init__(store)
        with self.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS trick_counts (trick TEXT PRIMARY KEY, n INTEGER NOT NULL)")

    def incr(self, trick: str, tracking: Tracking) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO trick_counts VALUES (?, 1) ON CONFLICT DO UPDATE SET n = n + 1", (trick,))
            self.track(conn, tracking)

    def count(self, trick: str) -> int:
        rows = self.store.connection.execute("SELECT n FROM trick_counts WHERE trick = ?", (trick,)).fetchall()
        return rows[0][0] if rows else 0


class TrickCountsProjection(Projection[TrickCounts]):
    @singledispatchmethod
    def process_event(self, domain_event: object, tracking: Tracking) -> None:
        self.view.insert_tracking(tracking)

    @process_event.register
    def _(self, domain_event: Dog.TrickAdded, tracking: Tracking) -> None:
        self.view.incr(domain_event.trick, tracking)


def es_env(path: Path) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "uok.adapters.es_apsw", "SQLITE_DBNAME": str(path)}


def next_within(iterator, seconds: float):
    out: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: out.put(next(iterator)), daemon=True).start()
    return out.get(timeout=seconds)


def test_application_saves_gets_and_lists_notifications(tmp_path: Path) -> None:
    path = tmp_path / "es.db"
    app = DogSchool(env=es_env(path))
    assert isinstance(app.factory, ApswFactory)
    dog_id = app.register_dog("Fido")
    app.add_trick(dog_id, "roll over")
    app.add_trick(dog_id, "play dead")
    dog = app.repository.get(dog_id)
    assert (dog.name, dog.tricks, dog.version) == ("Fido", ["roll over", "play dead"], 3)
    notes = app.notification_log.select(start=1, limit=10)
    assert [n.id for n in notes] == [1, 2, 3] and notes[0].originator_id == dog_id
    assert app.recorder.max_notification_id() == 3
    assert [n.id for n in app.recorder.select_notifications(2, 10, stop=2)] == [2]
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([app.recorder.select_events(dog_id, lte=1)[0]])
    app.close()
    with SqliteEventStore(path) as s:
        assert [r.stream for r in s.read()] == [str(dog_id)] * 3
        assert s.verify_chain()[0] == 3


def test_snapshots_stay_out_of_the_chained_log(tmp_path: Path) -> None:
    path = tmp_path / "snap.db"
    app = DogSchool(env={**es_env(path), "IS_SNAPSHOTTING_ENABLED": "y"})
    dog_id = app.register_dog("Fido")
    app.add_trick(dog_id, "sit")
    app.take_snapshot(dog_id)
    app.add_trick(dog_id, "stay")
    assert app.repository.get(dog_id).tricks == ["sit", "stay"]
    assert app.repository.get(dog_id, version=2).tricks == ["sit"]
    app.close()
    with SqliteEventStore(path) as s:
        assert s.count() == 3 and s.verify_chain()[0] == 3
        assert s.query("SELECT count(*) FROM stored_snapshots") == [(1,)]


def test_process_recorder_writes_events_and_tracking_atomically(tmp_path: Path) -> None:
    factory = ApswFactory(es_env(tmp_path / "p.db"))
    recorder = factory.process_recorder()
    event = DogSchool(env=es_env(tmp_path / "other.db")).mapper.to_stored_event(Dog("Rex").collect_events()[0])
    assert recorder.insert_events([event], tracking=Tracking("upstream", 5)) == [1]
    assert recorder.max_tracking_id("upstream") == 5
    assert recorder.insert_events([], tracking=Tracking("upstream", 6)) == []
    with pytest.raises(IntegrityError):  # tracking went backwards: the event is rolled back too
        second = StoredEvent(event.originator_id, 2, event.topic, event.state)
        recorder.insert_events([second], tracking=Tracking("upstream", 6))
    assert factory.store.count() == 1 and recorder.max_tracking_id("upstream") == 6
    factory.close()


def test_projection_runner_processes_events(tmp_path: Path) -> None:
    env = es_env(tmp_path / "runner.db")
    with ProjectionRunner(
        application_class=DogSchool, projection_class=TrickCountsProjection, view_class=TrickCounts, env=env
    ) as runner:
        dog_id = runner.app.register_dog("Fido")
        runner.app.add_trick(dog_id, "sit")
        runner.app.add_trick(dog_id, "sit")
        runner.wait(runner.app.recorder.max_notification_id(), timeout=5)
        assert runner.view.count("sit") == 2
        assert runner.view.max_tracking_id(DogSchool.name) == 3


def test_subscription_sees_later_events_from_this_and_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "sub.db"
    app = DogSchool(env=es_env(path))
    app.register_dog("Fido")
    with app.recorder.subscribe(gt=1) as sub:
        dog_id = app.register_dog("Rex")
        note = next_within(sub, 5)
        assert (note.id, note.originator_id) == (2, dog_id)
        proc = run_python(APPENDER, str(path), "elsewhere", "1", str(path))  # go-file exists already
        assert proc.wait(timeout=30) == 0
        note = next_within(sub, 5)
        assert (note.id, note.originator_id, note.topic) == (3, "elsewhere", "Tick/v1")
    app.close()
