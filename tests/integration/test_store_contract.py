"""The event store contract, on both stores (apsw file and PostgreSQL
schema): gapless positions, optimistic concurrency, append-only, the same
hash chain byte for byte, several processes appending at once, and waiting
for commits (LISTEN/NOTIFY on PostgreSQL)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
from uok.domain.log.chain import GENESIS, ChainBroken, link
from uok.domain.log.errors import IntegrityError
from uok.domain.log.store import NewRecord

from tests.conftest import ROOT


def rec(stream: str, version: int, payload: bytes = b'{"x": 1}', topic: str = "Thing/v1") -> NewRecord:
    return NewRecord(stream, version, topic, payload)


@pytest.fixture
def store(logs):
    s = logs.open(logs.new(), create=True)
    yield s
    s.close()


def raw_execute(logs, store, statement: str) -> None:
    """Run SQL on the log through a connection of the driver itself, not the store."""
    if logs.is_postgres:
        import psycopg

        with psycopg.connect(store.target.conninfo, autocommit=True) as conn:
            conn.execute(f"SET search_path = {store.target.schema}")
            conn.execute(statement)
    else:
        import apsw

        conn = apsw.Connection(str(store.path))
        try:
            conn.execute(statement)
        finally:
            conn.close()


def test_round_trip_gapless_positions_head_and_stream_version(store) -> None:
    assert store.head() == (0, GENESIS) and store.count() == 0
    assert store.append([rec("a", 1), rec("b", 1), rec("a", 2)]) == [1, 2, 3]
    assert store.append([rec("a", 3)]) == [4]
    assert store.append([]) == []
    got = list(store.read())
    assert [(r.position, r.stream, r.version) for r in got] == [(1, "a", 1), (2, "b", 1), (3, "a", 2), (4, "a", 3)]
    assert store.head() == (4, got[-1].hash)
    assert store.stream_version("a") == 3 and store.stream_version("b") == 1 and store.stream_version("zz") == 0
    assert [r.position for r in store.read(1, upto=3)] == [2, 3]
    assert [r.position for r in store.read(stream="a")] == [1, 3, 4]
    assert [r.position for r in store.read(topics=["Thing/v1"], limit=2)] == [1, 2]
    assert store.hash_at(2) == got[1].hash and store.hash_at(99) is None
    assert store.last_of_stream("a") == got[3] and store.last_of_stream("zz") is None
    assert list(store.read(10**30)) == [] and [r.position for r in store.read(-(10**30), upto=1)] == [1]


def test_read_streams_across_pages(store) -> None:
    store.append([rec(f"s{i % 7}", i // 7 + 1) for i in range(2500)])
    assert [r.position for r in store.read()] == list(range(1, 2501))
    assert [r.position for r in store.read(1000, limit=1200)] == list(range(1001, 2201))
    assert store.range_rows(10, 12) == [msgspec.structs.astuple(r) for r in store.read(10, upto=12)]
    assert store.range_rows(10, 12, ["Thing/v1"]) == [(r.position, r.topic, r.payload) for r in store.read(10, upto=12)]


def test_the_same_events_get_byte_identical_hashes_on_either_store(store) -> None:
    events = [
        rec(f"strëam-{i % 5}", i // 5 + 1, f'{{"i": {i}, "ü": "☃"}}'.encode(), f"Tøpic{i % 3}/v1") for i in range(60)
    ]
    store.append(events[:1])
    store.append(events[1:25])
    store.append(events[25:])
    prev = GENESIS
    for r in store.read():
        assert link(prev, r.position, r.stream, r.version, r.topic, r.payload) == r.hash
        prev = r.hash
    # the value is pinned: the same on SQLite and PostgreSQL, and on every machine
    assert prev.hex() == HEAD_OF_60
    assert store.verify_chain() == (60, prev)
    assert store.verify_chain(after=10) == (50, prev)


HEAD_OF_60 = "3a0cccb88159d13e0a2f9b0fe02076badda02346c5d9f17e1ea9cb69a994c0eb"


def test_conflict_raises_library_integrity_error_and_writes_nothing(store) -> None:
    store.append([rec("a", 1), rec("a", 2)])
    with pytest.raises(IntegrityError, match=r"'a'.* 2"):
        store.append([rec("b", 1), rec("a", 2), rec("c", 1)])
    with pytest.raises(IntegrityError, match=r"'d'.*version 1"):
        store.append([rec("d", 1), rec("d", 1)])
    assert store.count() == 2 and store.stream_version("b") == 0
    assert store.append([rec("b", 1)]) == [3]
    assert store.verify_chain()[0] == 3


@pytest.mark.parametrize("statement", ["UPDATE events SET payload = payload", "DELETE FROM events"])
def test_update_and_delete_refused_through_any_connection(logs, store, statement: str) -> None:
    store.append([rec("a", 1), rec("a", 2)])
    before = list(store.read())
    with pytest.raises(Exception, match="append-only"):
        raw_execute(logs, store, statement)
    assert list(store.read()) == before


def test_truncate_refused_on_postgres(pg_server, tmp_path) -> None:
    """SQLite has no TRUNCATE (its DELETE without WHERE is refused above)."""
    from tests.stores import Logs

    logs = Logs("postgres", tmp_path, pg_server)
    with logs.open(logs.new(), create=True) as store:
        store.append([rec("a", 1)])
        with pytest.raises(Exception, match="append-only"):
            raw_execute(logs, store, "TRUNCATE events")
        assert store.count() == 1


def test_tampering_is_found_at_the_exact_position(logs, store) -> None:
    store.append([rec(f"s{i % 3}", i // 3 + 1, f'{{"i": {i}}}'.encode()) for i in range(30)])
    assert store.integrity_problems() == []
    if logs.is_postgres:
        raw_execute(logs, store, "ALTER TABLE events DISABLE TRIGGER events_no_update")
        raw_execute(logs, store, "UPDATE events SET payload = convert_to('{\"i\": 999}', 'UTF8') WHERE position = 17")
        assert any("events_no_update is disabled" in p for p in store.integrity_problems())
    else:
        raw_execute(logs, store, "DROP TRIGGER events_no_update")
        raw_execute(logs, store, "UPDATE events SET payload = x'7b2269223a203939397d' WHERE position = 17")
    with pytest.raises(ChainBroken) as exc:
        store.verify_chain()
    assert exc.value.position == 17
    assert store.verify_chain(after=17)[0] == 13  # a later suffix is still self-consistent


def test_other_stores_see_commits_on_their_next_call(logs) -> None:
    target = logs.new()
    with logs.open(target, create=True) as writer, logs.open(target) as reader:
        writer.append([rec("a", 1)])
        assert reader.head()[0] == 1
        writer.append([rec("a", 2)])
        assert [r.version for r in reader.read()] == [1, 2]


def test_threads_share_one_store(store) -> None:
    errors: list[BaseException] = []

    def work(tid: int) -> None:
        try:
            for i in range(40):
                store.append([rec(f"t{tid}", i + 1)])
                list(store.read(max(0, store.head()[0] - 5)))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [r.position for r in store.read()] == list(range(1, 161))
    assert store.verify_chain()[0] == 160


APPENDER = """
import sys, pathlib, time
from uok.adapters.log_store import open_log_store
from uok.domain.log.store import NewRecord
target, name, n, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
store = open_log_store(target, create=True)
pathlib.Path(go + "." + name).touch()  # opened: ready to append
while not pathlib.Path(go).exists():
    time.sleep(0.001)
for i in range(n):
    store.append([NewRecord(name, 2 * i + 1, "Tick/v1", b"{}"), NewRecord(name, 2 * i + 2, "Tick/v1", b"{}")])
    time.sleep(0.0002)  # a little work between appends, as real writers do
store.close()
"""


def test_processes_append_concurrently_without_gaps_or_lost_events(logs, tmp_path) -> None:
    target = logs.new()
    logs.open(target, create=True).close()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(target), f"p{k}", "60", str(go)], env=env, cwd=ROOT)
        for k in range(3)
    ]
    # all three start appending together, once each has started and opened the log
    # (started at once, one could finish before another has imported anything)
    deadline = time.monotonic() + 120
    while not all(Path(f"{go}.p{k}").exists() for k in range(3)):
        assert all(p.poll() is None for p in procs), [p.poll() for p in procs]
        assert time.monotonic() < deadline, "the appenders did not open the log within 120 s"
        time.sleep(0.01)
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with logs.open(target) as store:
        rows = list(store.read())
        assert [r.position for r in rows] == list(range(1, 361))
        for k in range(3):  # each batch stayed contiguous and in version order
            mine = [r for r in rows if r.stream == f"p{k}"]
            assert [r.version for r in mine] == list(range(1, 121))
            assert all(b.position == a.position + 1 for a, b in zip(mine[::2], mine[1::2], strict=True))
        assert sum(a.stream != b.stream for a, b in itertools.pairwise(rows)) > 2, "the writers never interleaved"
        assert store.verify_chain()[0] == 360


def test_a_reader_never_sees_a_later_position_before_an_earlier_one(logs, tmp_path) -> None:
    """Tail the log while three processes append: every read is a gapless prefix."""
    target = logs.new()
    logs.open(target, create=True).close()
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", APPENDER, str(target), f"p{k}", "80", str(go)], env=env, cwd=ROOT)
        for k in range(3)
    ]
    seen = 0
    with logs.open(target) as reader:
        go.touch()
        while any(p.poll() is None for p in procs) or seen < 480:
            for r in reader.read(seen):
                assert r.position == seen + 1, f"saw {r.position} after {seen}"
                seen = r.position
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert seen == 480


def test_listen_wakes_on_commits_of_this_and_other_processes(logs) -> None:
    target = logs.new()
    with logs.open(target, create=True) as store, store.listen() as listener:
        store.append([rec("a", 1)])
        assert listener.wait(0, timeout=5) == 1  # already past: no wait
        started = time.monotonic()
        assert listener.wait(1, timeout=0.2) == 1  # nothing new: returns at the timeout
        assert time.monotonic() - started >= 0.15
        timer = threading.Timer(0.2, lambda: store.append([rec("a", 2)]))
        timer.start()
        assert listener.wait(1, timeout=30) == 2
        timer.join()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        code = (
            "import sys; from uok.adapters.log_store import open_log_store; from uok.domain.log.store import NewRecord\n"
            "s = open_log_store(sys.argv[1]); s.append([NewRecord('b', 1, 'Tick/v1', b'{}')]); s.close()"
        )
        proc = subprocess.Popen([sys.executable, "-c", code, str(target)], env=env, cwd=ROOT)
        assert listener.wait(2, timeout=60) == 3
        assert proc.wait(timeout=60) == 0
        if logs.is_postgres:  # woken by NOTIFY, not by re-reading the head in a loop
            assert listener.notifications >= 2


def test_a_listener_closed_from_another_thread_releases_its_waiter(logs) -> None:
    """A web page's live stream is closed while its wait blocks in a worker thread."""
    target = logs.new()
    with logs.open(target, create=True) as store:
        listener = store.listen()
        result: list[int] = []
        waiter = threading.Thread(target=lambda: result.append(listener.wait(0, timeout=60)))
        started = time.monotonic()
        waiter.start()
        while waiter.is_alive() and time.monotonic() - started < 0.3:  # let it block
            time.sleep(0.01)
        listener.close()
        waiter.join(timeout=30)
        assert not waiter.is_alive() and result == [0]
        assert time.monotonic() - started < 15  # released by close, not by its 60 s timeout
