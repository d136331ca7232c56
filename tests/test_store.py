"""The apsw event log: append-only, gapless, hash-chained, multi-process safe,
and a working eventsourcing persistence module. Real files, real processes."""

from __future__ import annotations

import itertools
import os
import queue
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from uuid import UUID

import apsw
import pytest
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent, Tracking
from eventsourcing.projection import Projection, ProjectionRunner
from uok.adapters.es_apsw import ApswFactory, ApswTrackingRecorder
from uok.adapters.sqlite_store import NotAnEventLogError, SqliteEventStore, StoreCorruptError, StoreFullError
from uok.domain.log.chain import GENESIS, ChainBroken, link
from uok.domain.log.store import NewRecord

ROOT = Path(__file__).resolve().parents[1]


def rec(stream: str, version: int, payload: bytes = b'{"x": 1}', topic: str = "Thing/v1") -> NewRecord:
    return NewRecord(stream, version, topic, payload)


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteEventStore(tmp_path / "log" / "uok.db")
    yield s
    s.close()


def run_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, stderr=subprocess.PIPE)


# -- append / read -------------------------------------------------------------


def test_round_trip_gapless_positions_head_and_stream_version(store: SqliteEventStore) -> None:
    assert store.head() == (0, GENESIS) and store.count() == 0
    assert store.append([]) == []
    assert store.append([rec("a", 1), rec("a", 2), rec("b", 1, topic="Other/v1")]) == [1, 2, 3]
    assert store.append([rec("a", 3, b"third")]) == [4]
    rows = list(store.read())
    assert [r.position for r in rows] == [1, 2, 3, 4]
    assert (rows[3].stream, rows[3].version, rows[3].topic, rows[3].payload) == ("a", 3, "Thing/v1", b"third")
    assert store.head() == (4, rows[3].hash)
    assert (store.stream_version("a"), store.stream_version("b"), store.stream_version("zz")) == (3, 1, 0)
    assert [r.position for r in store.read(1, upto=3)] == [2, 3]
    assert [r.position for r in store.read(limit=2)] == [1, 2]
    assert [r.position for r in store.read(stream="a")] == [1, 2, 4]
    assert [r.position for r in store.read(topics=["Other/v1"])] == [3]


def test_read_streams_across_pages(store: SqliteEventStore) -> None:
    store.append([rec(f"s{i % 7}", i // 7 + 1) for i in range(2500)])
    assert [r.position for r in store.read()] == list(range(1, 2501))
    assert [r.position for r in store.read(990, limit=1500)] == list(range(991, 2491))
    assert [r.position for r in store.read(stream="s3")] == list(range(4, 2501, 7))
    assert store.count() == 2500


def test_other_connections_see_commits_on_next_call(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    with SqliteEventStore(path) as writer, SqliteEventStore(path, synchronous="normal") as reader:
        assert reader.head()[0] == 0
        writer.append([rec("a", 1)])
        assert reader.head()[0] == 1 and [r.stream for r in reader.read()] == ["a"]


def test_threads_share_one_store(store: SqliteEventStore) -> None:
    def work(n: int) -> None:
        for v in range(1, 101):
            store.append([rec(f"t{n}", v)])

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count() == 400 and store.head()[0] == 400
    assert store.verify_chain()[0] == 400


# -- integrity -----------------------------------------------------------------


def test_conflict_raises_library_integrity_error_and_writes_nothing(store: SqliteEventStore) -> None:
    store.append([rec("a", 1), rec("a", 2)])
    with pytest.raises(IntegrityError, match=r"'a'.* 2"):
        store.append([rec("b", 1), rec("a", 2), rec("c", 1)])
    with pytest.raises(IntegrityError, match=r"'d'.*version 1"):
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


def test_chain_recomputes_and_detects_tampering_at_the_exact_position(store: SqliteEventStore) -> None:
    store.append([rec(f"s{i % 3}", i // 3 + 1, f'{{"i": {i}}}'.encode()) for i in range(30)])
    prev = GENESIS
    for r in store.read():
        assert link(prev, r.position, r.stream, r.version, r.topic, r.payload) == r.hash
        prev = r.hash
    assert store.verify_chain() == (30, prev)
    assert store.verify_chain(after=10) == (20, prev)

    side = apsw.Connection(str(store.path))
    side.execute("DROP TRIGGER events_no_update")
    side.execute("UPDATE events SET payload = ? WHERE position = 17", (b'{"i": 999}',))
    side.close()
    with pytest.raises(ChainBroken) as broken:
        store.verify_chain()
    assert broken.value.position == 17
    assert store.verify_chain(after=17)[0] == 13  # a later suffix is still self-consistent


# -- several processes -----------------------------------------------------------

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
    time.sleep(0.0002)  # a little work between events, as real writers do
store.close()
"""


def test_two_processes_append_concurrently(tmp_path: Path) -> None:
    path, go = tmp_path / "shared.db", tmp_path / "go"  # both processes create the file
    procs = [run_python(APPENDER, str(path), name, "1000", str(go)) for name in ("p1", "p2")]
    time.sleep(0.3)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with SqliteEventStore(path) as s:
        rows = list(s.read())
        assert [r.position for r in rows] == list(range(1, 2001))
        assert len({(r.stream, r.version) for r in rows}) == 2000
        assert s.stream_version("p1") == s.stream_version("p2") == 1000
        assert [r.version for r in rows if r.stream == "p1"] == list(range(1, 1001))
        switches = sum(a.stream != b.stream for a, b in itertools.pairwise(rows))
        assert switches > 1, "the two writers never interleaved"
        assert s.verify_chain()[0] == 2000


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
        with pytest.raises(OperationalError, match="readonly"):
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
