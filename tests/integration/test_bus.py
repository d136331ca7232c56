"""The message bus: events in a real apsw log, inbox folds, two real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from uok.adapters.bus import BusError, MessageBus, dedupe_id
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.events import MessageRead, MessageSent
from uok.projections.base import fold
from uok.projections.inbox import InboxProjection
from uok.projections.registry import ALL, by_name

from tests.conftest import ROOT, json_lines, uok
from tests.helpers import StepClock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "bus.db"


def open_bus(db: Path, **kw) -> MessageBus:
    return MessageBus(EventLog(SqliteEventStore(db)), **kw)


def sent(db: Path) -> list[MessageSent]:
    with SqliteEventStore(db) as store:
        return [e for _, e in EventLog(store).events() if isinstance(e, MessageSent)]


def test_send_inbox_read_and_conversation_in_order(db: Path):
    bus = open_bus(db, clock=StepClock())
    m1 = bus.send("alice", "bob", "task", {"n": 1})
    m2 = bus.send("bob", "alice", "reply", {"n": 2})
    m3 = bus.send("alice", "bob", "task", {"n": 3})
    bus.send("carol", "bob", "", {"n": 4})
    assert [m.id for m in bus.inbox("bob")] == [m1, m3, bus.inbox("bob")[-1].id]
    assert bus.unread_count("bob") == 3 and bus.unread_count("alice") == 1
    assert bus.mark_read("bob", m1) is True
    assert bus.mark_read("bob", m1) is False  # at most once
    assert bus.unread_count("bob") == 2
    assert [m.id for m in bus.inbox("bob")] == [m3, bus.inbox("bob")[-1].id]
    assert [m.id for m in bus.inbox("bob", include_read=True)][:2] == [m1, m3]
    conv = bus.conversation("bob", "alice")
    assert [(m.sender, m.payload["n"]) for m in conv] == [("alice", 1), ("bob", 2), ("alice", 3)]
    assert conv[0].read_at is not None and conv[1].read_at is None
    assert bus.stats() == {"total": 4, "unread": 3, "agents": 3, "conversations": 2}
    with pytest.raises(BusError, match="addressed to alice"):
        bus.mark_read("bob", m2)
    with pytest.raises(BusError, match="no message"):
        bus.mark_read("bob", "nope")


def test_send_once_twice_with_the_same_key_writes_one_message(db: Path):
    bus = open_bus(db)
    a = bus.send_once("planner", "worker", "task", {"unit": "build"}, "build-1")
    b = bus.send_once("planner", "worker", "task", {"unit": "build", "changed": True}, "build-1")
    c = bus.send_once("planner", "worker", "task", {"unit": "build"}, "build-2")
    assert a == b == dedupe_id("planner", "worker", "task", "build-1") and c != a
    msgs = sent(db)
    assert [m.message_id for m in msgs] == [a, c]
    assert msgs[0].payload == {"unit": "build"} and msgs[0].dedupe_key == "build-1"


def test_send_once_race_between_two_processes_keeps_one_message_per_key(db: Path, tmp_path: Path):
    """Both processes skip the pre-check race window often; UNIQUE(stream, version) decides."""
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from uok.adapters.bus import MessageBus
        from uok.adapters.eventlog import EventLog
        from uok.adapters.sqlite_store import SqliteEventStore
        bus = MessageBus(EventLog(SqliteEventStore(sys.argv[1])))
        ids = [bus.send_once_ex("p", "w", "t", {{"k": k}}, f"key-{{k}}") for k in range(150)]
        print(sum(created for _, created in ids), ",".join(i for i, _ in ids))
    """)
    SqliteEventStore(db).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(db)], stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    created = [int(o[0]) for o in outs]
    assert sum(created) == 150  # each key written by exactly one of them
    assert outs[0][1] == outs[1][1]  # and both got the same ids
    assert len(sent(db)) == 150


def test_a_reader_sees_another_connections_message_on_its_next_call(db: Path):
    reader, writer = open_bus(db), open_bus(db)
    assert reader.unread_count("w") == 0
    mid = writer.send("p", "w", "t", {})
    assert [m.id for m in reader.inbox("w")] == [mid]  # no refresh interval, no stale cache
    writer.mark_read("w", mid)
    assert reader.unread_count("w") == 0 and reader.inbox("w") == []


def test_retention_bounds_the_read_model_not_the_log_or_the_counts(db: Path):
    bus = open_bus(db, retention=3)
    ids = [bus.send("p", "w", "", {"i": i}) for i in range(5)]
    assert [m.id for m in bus.inbox("w")] == ids[2:]
    assert bus.unread_count("w") == 5
    assert bus.mark_read("w", ids[0]) is True  # aged out of the window, still readable by id
    assert bus.unread_count("w") == 4
    assert len(bus.conversation("p", "w")) == 5
    # the same fold, driven by uok.projections.base.fold, gives the same read model
    with SqliteEventStore(db) as store:
        state, _ = fold(InboxProjection(retention=3), EventLog(store).events())
    assert state.inbox("w").unread == 4 and list(state.inbox("w").messages) == ids[2:]
    assert by_name("inbox").name == "inbox" and any(p.name == "inbox" for p in ALL)


def test_inbox_state_round_trips_through_a_snapshot(db: Path):
    bus = open_bus(db)
    m = bus.send("a", "b", "t", {"x": [1, 2]})
    bus.mark_read("b", m)
    proj = InboxProjection()
    state = bus.refresh()
    again = proj.decode(proj.encode(state))
    assert again == state and again.inbox("b").messages[m].read_at is not None


def test_subscription_returns_each_message_once_in_order(db: Path):
    bus = open_bus(db, retention=2)
    sub = bus.subscribe("w")
    for i in range(5):
        bus.send("p", "w", "", {"i": i})
    bus.send("p", "other", "", {"i": 99})
    assert [m.payload["i"] for m in sub.poll()] == [0, 1, 2, 3, 4]  # not limited by retention
    assert sub.poll() == []
    bus.send("p", "w", "", {"i": 5})
    assert [m.payload["i"] for m in sub.poll()] == [5]


READER = """
import sys, time, json
sys.path.insert(0, {root!r})
from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
bus = MessageBus(EventLog(SqliteEventStore(sys.argv[1])))
sub = bus.subscribe("worker")
open(sys.argv[2], "w").close()  # ready
seen, polls_with_news = [], 0
deadline = time.monotonic() + 60
while len(seen) < 1000 and time.monotonic() < deadline:
    got = sub.poll()
    if got:
        polls_with_news += 1
        for m in got:
            seen.append(m.payload["seq"])
            if len(seen) % 100 == 0:
                bus.mark_read("worker", m.id)
    else:
        time.sleep(0.005)
print(json.dumps({{"seen": seen, "polls": polls_with_news, "unread": bus.unread_count("worker")}}))
"""

SENDER = """
import sys
sys.path.insert(0, {root!r})
from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
bus = MessageBus(EventLog(SqliteEventStore(sys.argv[1], synchronous="NORMAL")))
for i in range(1000):
    bus.send("planner", "worker", "task", {{"seq": i}})
"""


def test_one_process_sends_1000_while_another_reads_them_as_they_arrive(db: Path, tmp_path: Path):
    SqliteEventStore(db).close()
    ready = tmp_path / "ready"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER.format(root=str(ROOT)), str(db), str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    sender = subprocess.run(
        [sys.executable, "-c", SENDER.format(root=str(ROOT)), str(db)], capture_output=True, text=True, timeout=120
    )
    assert sender.returncode == 0, sender.stderr
    out, err = reader.communicate(timeout=90)
    assert reader.returncode == 0, err
    result = orjson.loads(out)
    assert result["seen"] == list(range(1000))  # all, in order, none twice
    assert result["polls"] > 1  # it read while the other process was still sending
    assert result["unread"] == 990  # every 100th was marked read by the reader
    assert len(sent(db)) == 1000


def test_bus_cli_send_inbox_read_conversation(db: Path):
    r = uok("bus", "send", "planner", "w1", "--topic", "task", '{"unit": "a"}', "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    first = orjson.loads(r.stdout)
    assert first["created"] is True
    r1 = uok("bus", "send", "planner", "w1", "--key", "k", "{}", "--db", str(db), "--json")
    r2 = uok("bus", "send", "planner", "w1", "--key", "k", "{}", "--db", str(db), "--json")
    assert orjson.loads(r1.stdout)["message_id"] == orjson.loads(r2.stdout)["message_id"]
    assert orjson.loads(r2.stdout)["created"] is False
    inbox = orjson.loads(uok("bus", "inbox", "w1", "--db", str(db), "--json").stdout)
    assert inbox["unread"] == 2 and [m["payload"] for m in inbox["messages"]] == [{"unit": "a"}, {}]
    r = uok("bus", "read", "w1", first["message_id"], "--db", str(db), "--json")
    assert r.returncode == 0 and orjson.loads(r.stdout)["marked_read"] is True
    assert orjson.loads(uok("bus", "inbox", "w1", "--db", str(db), "--json").stdout)["unread"] == 1
    assert len(orjson.loads(uok("bus", "inbox", "w1", "--all", "--db", str(db), "--json").stdout)["messages"]) == 2
    conv = json_lines(uok("bus", "conversation", "w1", "planner", "--db", str(db), "--json").stdout)
    assert next(m["id"] for m in conv) == first["message_id"] and len(conv) == 2
    text = uok("bus", "inbox", "w1", "--db", str(db))
    assert "w1: 1 unread" in text.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["send", "a", "b", "{not json"], "not valid JSON"),
        (["send", "a", "b", "[1, 2]"], "must be an object"),
        (["read", "b", "no-such-id"], "no message"),
    ],
)
def test_bus_cli_bad_input_exits_2_with_one_line(db: Path, args, message):
    uok("bus", "send", "a", "b", "{}", "--db", str(db))
    r = uok("bus", *args, "--db", str(db))
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len([line for line in r.stderr.splitlines() if line.startswith("uok:")]) == 1


def test_message_read_is_recorded_once_per_message(db: Path):
    bus1, bus2 = open_bus(db), open_bus(db)
    mid = bus1.send("a", "b", "", {})
    assert [bus1.mark_read("b", mid), bus2.mark_read("b", mid)] == [True, False]
    with SqliteEventStore(db) as store:
        reads = [e for _, e in EventLog(store).events() if isinstance(e, MessageRead)]
        assert len(reads) == 1 and store.stream_version(f"msg:{mid}") == 2
