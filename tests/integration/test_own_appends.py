"""Readers that skip the log on what their own process appended (issue 15,
CPU per task) still see every append of everyone else.

A run's writer tokens fold their own records, its steering poll and its
feedback index ask ``SqliteEventStore.appended_mark`` (``data_version`` and
this connection's own appends of the topics) before reading: these tests
append through a second connection, and through the same connection
without telling the reader, and check that each reader sees it; and that
while nothing of theirs was appended they read nothing (the point).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.adapters.feedback import FeedbackIndex
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.turnlogs import LogsDir
from uok.adapters.writer import WriterTokens
from uok.domain import events as ev

from tests.helpers import StepClock

AT = datetime(2026, 12, 1, tzinfo=UTC)


class CountingReads:
    """Counts ``read`` calls of a store (delegating everything)."""

    def __init__(self, store: SqliteEventStore):
        self.store, self.reads = store, 0

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def read(self, *a, **kw):
        self.reads += 1
        return self.store.read(*a, **kw)


def test_appended_mark_moves_on_another_connections_commit_and_on_own_appends_of_its_topics(tmp_path: Path):
    db = tmp_path / "m.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        log, other_log = EventLog(store), EventLog(other)
        topics = ("MessageSent/v1",)
        first = store.appended_mark(topics)
        assert store.appended_mark(topics) == first  # nothing happened
        log.append([ev.TurnClosed(run_id="r", at=AT, turn_id="r:1")])
        assert store.appended_mark(topics) == first  # its own append of another topic
        other_log.append([ev.TurnClosed(run_id="r", at=AT, turn_id="r:2")])
        second = store.appended_mark(topics)
        assert second != first  # another connection committed (of any topic: it cannot know)
        MessageBus(log).send("a", "b", "hello")
        assert store.appended_mark(topics) != second  # its own append of the topic


def test_writer_tokens_read_nothing_for_their_own_records_and_see_another_processes(tmp_path: Path):
    db = tmp_path / "w.db"
    with SqliteEventStore(db) as a_store, SqliteEventStore(db) as b_store:
        a_reads = CountingReads(a_store)
        a = WriterTokens(EventLog(a_reads), clock=StepClock(step=1))  # type: ignore[arg-type]
        b = WriterTokens(EventLog(b_store), clock=StepClock(step=1))
        t1 = a.acquire("r:1")
        before = a_reads.reads
        assert a.release(t1) is True
        t2 = a.acquire("r:2")
        assert a_reads.reads == before  # its own records: folded as made, never read back
        t3 = b.acquire("r:3")  # another connection takes the next sequence
        t4 = a.acquire("r:4")
        assert a_reads.reads > before  # ... which a read
        assert [t.epoch for t in (t1, t2, t3, t4)] == [1, 3, 4, 5]
        assert sorted(a.refresh().held) == [3, 4, 5]
        assert a.release(t4) is True
        assert sorted(b.refresh().held) == sorted(a.refresh().held) == [3, 4]


def test_a_failed_append_makes_the_writer_fold_start_over(tmp_path: Path):
    db = tmp_path / "w.db"
    with SqliteEventStore(db) as store:
        w = WriterTokens(EventLog(store), clock=StepClock(step=1))
        w.acquire("r:1")
        w.state.held.clear()  # what a fold that counted on a lost append might hold
        w.forget()
        assert sorted(w.refresh().held) == [1]


def test_the_bus_reads_nothing_while_no_message_can_be_new_and_sees_one_from_anywhere(tmp_path: Path):
    db = tmp_path / "b.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        reads = CountingReads(store)
        bus = MessageBus(EventLog(reads))  # type: ignore[arg-type]
        assert bus.inbox("kernel:r") == []
        n = reads.reads
        EventLog(store).append([ev.TurnClosed(run_id="r", at=AT, turn_id="r:1")])  # not a message
        assert bus.inbox("kernel:r") == [] and reads.reads == n
        MessageBus(EventLog(other)).send("op", "kernel:r", "steer", {"command": "note"})
        assert [m.sender for m in bus.inbox("kernel:r")] == ["op"]
        MessageBus(EventLog(store)).send("op2", "kernel:r", "steer", {"command": "note"})  # same connection
        assert [m.sender for m in bus.inbox("kernel:r")] == ["op", "op2"]


def test_the_feedback_index_folds_what_it_was_handed_and_reads_what_it_was_not(tmp_path: Path):
    db = tmp_path / "f.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        reads = CountingReads(store)
        log = EventLog(reads)  # type: ignore[arg-type]
        index = FeedbackIndex(log, LogsDir(tmp_path / "logs", tmp_path))

        def turn(i: int, run: str = "r") -> ev.TurnStarted:
            return ev.TurnStarted(
                run_id=run, at=AT, turn_id=f"r:{i}", iteration=i, unit_id="u", unit_type="t", attempt=i
            )

        def earlier(i: int) -> list[str]:
            data = index.feedback(plan_id="", run_id="r", unit_id="u", turn_id=f"r:{i}", attempt=i)
            return [a["turn_id"] for a in data["previous_attempts"]]

        assert earlier(1) == []
        n = reads.reads
        batch = [turn(1), ev.TurnClosed(run_id="r", at=AT, turn_id="r:1")]
        index.appended(log.append(batch), batch)  # what the runner does with each append
        assert earlier(2) == ["r:1"] and reads.reads == n  # handed over: folded without a read
        batch = [turn(2)]
        index.appended(log.append(batch), batch)
        assert earlier(3) == ["r:1", "r:2"] and reads.reads == n
        log.append([turn(3)])  # appended by this connection, not handed
        assert earlier(4) == ["r:1", "r:2", "r:3"]
        m = reads.reads
        EventLog(other).append([turn(4, run="q")])  # another connection (its own stream)
        assert earlier(5) == ["r:1", "r:2", "r:3", "r:4"] and reads.reads > m
        batch = [turn(5)]
        index.appended(log.append(batch), batch)
        assert earlier(6) == ["r:1", "r:2", "r:3", "r:4", "r:5"]


def test_the_steering_poll_skips_the_inbox_while_no_message_event_was_appended_and_sees_the_next(tmp_path: Path):
    from uok.adapters.steering import SteeringPoller, send_steering
    from uok.domain.kernel import Kernel

    db = tmp_path / "s.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        log = EventLog(store)
        stepped: list[ev.Event] = []
        poller = SteeringPoller(
            log, Kernel, run_id="r1", step=lambda obs, prior=(): stepped.append(obs), clock=StepClock(step=1)
        )
        inboxes = {"n": 0}
        real_inbox = poller.bus.inbox

        def counted(*a, **kw):
            inboxes["n"] += 1
            return real_inbox(*a, **kw)

        poller.bus.inbox = counted  # type: ignore[method-assign]
        assert poller.poll() == 0
        log.append([ev.TurnClosed(run_id="r1", at=AT, turn_id="r1:1")])  # not a message event
        assert poller.poll() == 0
        assert inboxes["n"] == 1  # the second poll did not look: nothing of the bus moved
        send_steering(MessageBus(EventLog(other)), "r1", "pause")  # another connection (any process)
        assert poller.poll() == 1
        assert [type(e) for e in stepped] == [ev.SteeringReceived]
        assert inboxes["n"] == 2
