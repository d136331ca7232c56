"""The eventsourcing library's own recorder test suites, run against the
apsw recorders of :mod:`uok.adapters.es_apsw`.

The library ships abstract test cases for every recorder contract
(``eventsourcing.tests.persistence``); a persistence module is correct when
they pass against it. Each case below only says how to build the recorder
on a fresh uok event log. Where a library test checks something our log
guarantees differently, that single test is overridden here with the
reason and an assertion of what uok does instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from uuid import uuid4

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment
from uok.adapters.es_apsw import (
    ApswAggregateRecorder,
    ApswApplicationRecorder,
    ApswFactory,
    ApswProcessRecorder,
    ApswSnapshotRecorder,
    ApswTrackingRecorder,
)


class _OnAFreshLog:
    """A new event log file per test, built through the module's factory
    (``UOK_DB``), closed and removed afterwards."""

    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="uok-es-")
        self.db = Path(self._dir.name) / "events.db"
        self.factory = ApswFactory(Environment(env={"UOK_DB": str(self.db)}))
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
            self.assert_log_intact()
        finally:
            self.factory.close()
            self._dir.cleanup()

    def assert_log_intact(self) -> None:
        """Our guarantee on top of every library test: whatever it wrote, and
        however many threads wrote it, the log is gapless and its hash chain
        recomputes from genesis to the head."""
        store = self.factory.store
        head, head_hash = store.head()
        assert store.count() == head, "positions have gaps"
        assert store.verify_chain() == (head, head_hash)


def _single_events(n: int) -> list[StoredEvent]:
    return [StoredEvent(uuid4(), 1, "topic1", b"state1") for _ in range(n)]


# The library's ``test_performance`` cases time 100 single-event inserts and
# print the rate; they assert nothing. uok measures speed with benchmarks
# (bench/append.py, figures in docs/performance.md), not timed tests, so each
# is overridden below to make the same inserts and assert what the log
# guarantees for them instead: every insert recorded, in order, at the next
# position.


class TestAggregateRecorder(_OnAFreshLog, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory.aggregate_recorder()

    def test_performance(self) -> None:  # see the note above _single_events
        recorder = self.create_recorder()
        events = _single_events(110)
        for event in events:
            assert recorder.insert_events([event]) is None
        for event in events:
            assert recorder.select_events(event.originator_id) == [event]
        assert [r.stream for r in self.factory.store.read(0)] == [str(e.originator_id) for e in events]


class TestSnapshotRecorder(_OnAFreshLog, AggregateRecorderTestCase):
    """Snapshots (any purpose but "events") live in their own plain table."""

    def create_recorder(self) -> AggregateRecorder:
        recorder = self.factory.aggregate_recorder("snapshots")
        assert isinstance(recorder, ApswSnapshotRecorder)
        return recorder

    def test_performance(self) -> None:  # see the note above _single_events
        recorder = self.create_recorder()
        events = _single_events(110)
        for event in events:
            assert recorder.insert_events([event]) is None
        for event in events:
            assert recorder.select_events(event.originator_id) == [event]
        assert self.factory.store.head()[0] == 0, "snapshots must stay out of the chained log"


class TestApplicationRecorder(_OnAFreshLog, ApplicationRecorderTestCase[ApswApplicationRecorder]):
    def create_recorder(self) -> ApswApplicationRecorder:
        recorder = self.factory.application_recorder()
        assert isinstance(recorder, ApswApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_performance(self) -> None:  # see the note above _single_events
        recorder = self.create_recorder()
        events = _single_events(110)
        ids = [recorder.insert_events([event]) for event in events]
        assert ids == [[n] for n in range(1, 111)]
        notifications = recorder.select_notifications(start=None, limit=200)
        assert [(n.id, n.originator_id) for n in notifications] == [
            (i, e.originator_id) for i, e in enumerate(events, start=1)
        ]


class TestNonInterleavingNotificationIDs(_OnAFreshLog, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory.application_recorder()


class TestTrackingRecorder(_OnAFreshLog, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.factory.tracking_recorder()


class TestProcessRecorder(_OnAFreshLog, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.factory.process_recorder()

    def test_performance(self) -> None:  # see the note above _single_events
        recorder = self.create_recorder()
        for n, event in enumerate(_single_events(100), start=1):
            recorder.insert_events([event], tracking=Tracking("upstream_app", n))
            assert recorder.max_tracking_id("upstream_app") == n
            assert self.factory.store.head()[0] == n


class _TrackingSubclass(ApswTrackingRecorder):
    """A view's recorder, as applications subclass it."""


class TestInfrastructureFactory(InfrastructureFactoryTestCase[ApswFactory]):
    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="uok-es-")
        self.env = Environment(
            "TestCase",
            {
                "PERSISTENCE_MODULE": "uok.adapters.es_apsw",
                "SQLITE_DBNAME": str(Path(self._dir.name) / "events.db"),
            },
        )
        super().setUp()

    def tearDown(self) -> None:
        super().tearDown()
        self._dir.cleanup()

    def expected_factory_class(self) -> type[ApswFactory]:
        return ApswFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return ApswAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return ApswApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return ApswTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return _TrackingSubclass

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return ApswProcessRecorder
