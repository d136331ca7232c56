"""Where the shell reads the wall clock, and what it decides from it.

The domain never reads a clock: times arrive in observations. The adapters
do, in a few places: a run's id and the ``at`` of what it records, and the
commands that judge ages "now" (``uok breakers``: is an open breaker's time
up; ``uok parity``: is an unprobeable run stale; ``uok writer``: has a
token's TTL passed). These tests pin the clock (time-machine) instead of
sleeping past a boundary, so each one states the exact instant it checks
and cannot flake on a busy machine.

time-machine rather than freezegun: freezegun swaps ``datetime`` for a
subclass in every loaded module, which msgspec neither encodes nor, once it
has resolved a Struct's field types while frozen, ever decodes a real
datetime into again. time-machine moves the clock underneath, so
``datetime.now()`` still returns plain datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import time_machine
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.writer import WriterTokens
from uok.domain import events as ev

from tests.reliability.support import run_cli
from tests.run_support import read_events

T = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _frozen(moment: datetime) -> time_machine.travel:
    """The wall clock reads ``moment`` and stands still inside the block."""
    return time_machine.travel(moment, tick=False)


def _log(db: Path, events: list[ev.Event]) -> None:
    with SqliteEventStore(db) as store:
        EventLog(store).append(events)


def _json(argv: list[str]) -> dict:
    code, out, err = run_cli(argv)
    assert code == 0, err
    return orjson.loads(out)


def test_a_run_id_and_every_recorded_time_come_from_the_clock_at_the_start(tmp_path: Path):
    plan = tmp_path / "plan.toml"
    plan.write_text(  # tasks without a command: no subprocess, nothing else reads time
        '[plan]\nid = "p"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        '[[milestones.slices.tasks]]\nid = "a"\n[[milestones.slices.tasks]]\nid = "b"\n'
    )
    db = tmp_path / "events.db"
    with _frozen(T):
        code, _, err = run_cli(["run", str(plan), "--db", str(db), "--quiet"])
    assert code == 0, err
    events = [e for _, e in read_events(db)]
    run_id = events[0].run_id
    assert run_id.startswith("r20260304050607-") and len(run_id) == len("r20260304050607-") + 6
    assert {e.at for e in events} == {T}
    assert isinstance(events[-1], ev.KernelExited) and events[-1].status == "ok"


def test_uok_breakers_judges_an_open_breaker_by_the_clock(tmp_path: Path):
    db = tmp_path / "events.db"
    opened = ev.BreakerTransitioned(
        at=T,
        gate_id="verification",
        from_state="closed",
        to_state="open",
        streak=0,
        consecutive_failures=3,
        open_until=T + timedelta(seconds=30),
        reason="3 consecutive failures",
    )
    _log(db, [opened])
    argv = ["breakers", "--db", str(db), "--json"]

    with _frozen(T + timedelta(seconds=29)):
        [b] = _json(argv)["breakers"]
    assert (b["state"], b["effective_state"]) == ("open", "open")
    assert b["next_probe_at"] == (T + timedelta(seconds=30)).isoformat()

    with _frozen(T + timedelta(seconds=31)):
        [b] = _json(argv)["breakers"]
        code, text, _ = run_cli(argv[:-1])
    assert (b["state"], b["effective_state"]) == ("open", "half-open")
    assert b["next_probe_at"] == (T + timedelta(seconds=31)).isoformat()  # the next call is the probe
    assert code == 0 and "open (effectively half-open)" in text


def test_uok_parity_calls_an_unprobeable_run_orphaned_after_30_minutes(tmp_path: Path):
    """A run open on another host cannot be probed from here: it is in
    progress while younger than 30 minutes, orphaned (stale) after."""
    db = tmp_path / "events.db"
    _log(
        db,
        [
            ev.KernelEntered(
                run_id="far", at=T, pid=4242, host="another-host", plan_path="p.toml", plan_source="", workers=1
            )
        ],
    )
    argv = ["parity", "--db", str(db), "--json"]

    with _frozen(T + timedelta(minutes=29)):
        young = _json(argv)
    assert [r["run_id"] for r in young["in_progress"]] == ["far"] and young["fresh_mismatches"] == []

    with _frozen(T + timedelta(minutes=31)):
        stale = _json(argv)
    assert stale["in_progress"] == []
    [orphan] = stale["fresh_mismatches"]
    assert orphan["run_id"] == "far" and "stale" in orphan["detail"]


def test_uok_writer_shows_a_token_expired_once_its_ttl_has_passed_and_reclaims_it(tmp_path: Path):
    db = tmp_path / "events.db"
    with _frozen(T), SqliteEventStore(db) as store:
        w = WriterTokens(EventLog(store))
        w.acquire("dead-run:1", pid=999_999_999, ttl=60)  # a pid that cannot exist
        live = w.acquire("live-run:1", ttl=600)  # held by this process
    argv = ["writer", "--db", str(db), "--json"]

    with _frozen(T + timedelta(seconds=59)):
        state = _json(argv)
    held = {t["turn_id"]: t for t in state["held"]}
    assert state["sequence"] == 2
    assert held["dead-run:1"]["expired"] is False, "a token is live for its whole TTL, dead holder or not"
    assert held["dead-run:1"]["pid_alive"] is False and held["live-run:1"]["pid_alive"] is True

    with _frozen(T + timedelta(seconds=61)):
        held = {t["turn_id"]: t for t in _json(argv)["held"]}
        assert held["dead-run:1"]["expired"] is True and held["live-run:1"]["expired"] is False
        after = _json([*argv, "--reclaim"])
        with SqliteEventStore(db) as store:
            WriterTokens(EventLog(store)).guard_write(live.epoch)  # the live token still fences writes
    assert after["reclaimed"] == 1 and after["sequence"] == 3
    assert [t["turn_id"] for t in after["held"]] == ["live-run:1"]
    released = [e for _, e in read_events(db) if isinstance(e, ev.WriterTokenReleased)]
    assert [(e.turn_id, e.at) for e in released] == [("dead-run:1", T + timedelta(seconds=61))]
    assert released[0].reason.startswith("expired: held by pid 999999999")
