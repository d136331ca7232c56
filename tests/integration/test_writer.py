"""Writer tokens: the ``writer`` stream as a global monotonic sequence, TTL, fencing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.writer import StaleEpochError, TokenAlreadyActive, WriterTokens
from uok.domain.events import WriterTokenAcquired, WriterTokenReleased

from tests.conftest import ROOT
from tests.helpers import StepClock


def tokens(db: Path, **kw) -> WriterTokens:
    return WriterTokens(EventLog(SqliteEventStore(db)), **kw)


def writer_events(db: Path):
    with SqliteEventStore(db) as store:
        return [(r.version, EventLog.decode_all([r]).__next__()[1]) for r in store.read(0, stream="writer")]


def test_acquire_release_sequence_and_double_acquire(tmp_path: Path):
    db = tmp_path / "w.db"
    w = tokens(db, clock=StepClock(step=1))
    a = w.acquire("run:1", pid=11)
    assert (a.epoch, a.sequence) == (1, 1)
    with pytest.raises(TokenAlreadyActive, match="already active for turn run:1"):
        w.acquire("run:1")
    b = w.acquire("run:2")
    assert b.epoch == 2
    w.check(a)
    w.guard_write(a.epoch)
    assert w.release(a) is True and w.release(a) is False
    with pytest.raises(StaleEpochError, match="stale writer epoch 1"):
        w.guard_write(a.epoch)
    with pytest.raises(StaleEpochError):
        w.check(a)
    w.guard_write(b.epoch)  # the other turn's token is untouched
    rows = writer_events(db)
    assert [v for v, _ in rows] == [1, 2, 3]  # the stream version IS the global write sequence
    assert [e.sequence for _, e in rows] == [1, 2, 3]
    assert isinstance(rows[2][1], WriterTokenReleased) and rows[2][1].epoch == 1


def test_an_expired_token_does_not_block_and_is_reclaimed_with_a_higher_epoch(tmp_path: Path):
    clock = StepClock(step=0.1)
    w = tokens(tmp_path / "w.db", clock=clock)
    old = w.acquire("t:1", ttl=1.0)
    with pytest.raises(TokenAlreadyActive):
        w.acquire("t:1")
    clock.now += timedelta(seconds=2)
    new = w.acquire("t:1", ttl=1.0)  # same turn: the expired token no longer blocks it
    assert new.epoch > old.epoch
    with pytest.raises(StaleEpochError):
        w.guard_write(old.epoch)
    rows = writer_events(tmp_path / "w.db")
    reclaimed = [e for _, e in rows if isinstance(e, WriterTokenReleased)]
    assert len(reclaimed) == 1 and reclaimed[0].token_id == old.token_id and reclaimed[0].reason.startswith("expired")
    # a token past its TTL is stale even before anyone reclaims it
    clock.now += timedelta(seconds=5)
    with pytest.raises(StaleEpochError, match="expired"):
        w.guard_write(new.epoch)
    assert w.reclaim_expired() == 1


HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.writer import WriterTokens
w = WriterTokens(EventLog(SqliteEventStore(sys.argv[1])))
t = w.acquire("crashed-run:7", ttl=60.0)
print(t.epoch, flush=True)
time.sleep(60)
"""


def test_kill_9_of_a_token_holder_then_ttl_then_higher_epoch_and_stale_write_rejected(tmp_path: Path):
    db = tmp_path / "w.db"
    pre = tokens(db)
    pre.release(pre.acquire("earlier:1"))  # some history: sequence is 2 before the holder starts
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(root=str(ROOT)), str(db)], stdout=subprocess.PIPE, text=True
    )
    old_epoch = int(holder.stdout.readline())
    assert old_epoch == 3
    w = tokens(db)
    w.guard_write(old_epoch)  # live while its TTL runs, holder alive
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # The 60 s TTL passes (the clock is moved on, nobody sleeps); nobody released the dead holder's token.
    with time_machine.travel(datetime.now(UTC) + timedelta(seconds=61), tick=False):
        assert [t.turn_id for t in w.refresh().held.values()] == ["crashed-run:7"]  # still in the log
        fresh = w.acquire("next-run:1", ttl=60)
        assert fresh.epoch > old_epoch
        with pytest.raises(StaleEpochError):
            w.guard_write(old_epoch)
        w.guard_write(fresh.epoch)
    rows = writer_events(db)
    kinds = [(type(e).__name__, getattr(e, "reason", "")) for _, e in rows]
    assert kinds[2][0] == "WriterTokenAcquired" and kinds[3][0] == "WriterTokenReleased"
    assert kinds[3][1].startswith("expired: held by pid")
    assert [v for v, _ in rows] == list(range(1, len(rows) + 1))


WORKER = """
import sys
sys.path.insert(0, {root!r})
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.writer import WriterTokens
w = WriterTokens(EventLog(SqliteEventStore(sys.argv[1])))
for i in range(40):
    w.release(w.acquire(f"{{sys.argv[2]}}:{{i}}"))
"""


def test_two_processes_share_one_gapless_monotonic_sequence(tmp_path: Path):
    db = tmp_path / "w.db"
    SqliteEventStore(db).close()
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER.format(root=str(ROOT)), str(db), name]) for name in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    rows = writer_events(db)
    assert len(rows) == 160
    assert [v for v, _ in rows] == list(range(1, 161))
    assert all(e.sequence == v for v, e in rows)
    acquired = [e for _, e in rows if isinstance(e, WriterTokenAcquired)]
    assert len({e.epoch for e in acquired}) == 80
    assert {e.turn_id.split(":")[0] for e in acquired} == {"a", "b"}
