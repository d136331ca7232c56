"""Reading events written in an older version: a committed fixture holds a
hand-made v0 of ``UnitTransitioned`` (fields ``unit`` and ``state``, no
``dispatches``); an upcaster registered through ``codec.register_upcaster``
turns it into today's v1, for the codec, the projections and time travel."""

from __future__ import annotations

from pathlib import Path

import pytest
from uok.domain.events import UnitTransitioned
from uok.domain.log import codec
from uok.projections import registry
from uok.projections.runner import fold_from_zero
from uok.replay.timetravel import system_view

from tests.tt_support import fixture_db, open_runner


@pytest.fixture
def v0_upcaster(monkeypatch):
    """Register the v0 -> v1 upcaster for this test only."""
    monkeypatch.setattr(codec, "_UPCASTERS", dict(codec._UPCASTERS))

    @codec.register_upcaster("UnitTransitioned", 0)
    def v0_to_v1(data: dict) -> dict:
        data = dict(data)
        data["unit_id"] = data.pop("unit")
        data["to_state"] = data.pop("state")
        data.setdefault("dispatches", 1 if data["to_state"] not in ("queued",) else 0)
        return data

    return v0_to_v1


def test_without_an_upcaster_the_old_version_is_refused(tmp_path: Path):
    db = fixture_db("upcast_v0", tmp_path)
    store, ps, _runner = open_runner(db)
    [(_pos, topic, payload)] = next(ps.scan(0, 1))[1]
    with pytest.raises(codec.UnknownEventError, match="no upcaster for UnitTransitioned v0"):
        codec.decode(topic, payload)
    store.close()


def test_a_v0_event_is_read_as_todays_version(tmp_path: Path, v0_upcaster):
    db = fixture_db("upcast_v0", tmp_path)
    store, ps, runner = open_runner(db, snapshot_every=2)
    rows = [row for _end, page in ps.scan(0, store.head()[0]) for row in page]
    assert {topic for _p, topic, _payload in rows} == {"UnitTransitioned/v0"}
    events = [codec.decode(topic, payload) for _p, topic, payload in rows]
    assert all(type(e) is UnitTransitioned for e in events)
    assert [(e.unit_id, e.to_state) for e in events][:2] == [("a", "queued"), ("a", "claimed")]
    # the projections fold it like any v1 event, and time travel sees it
    units = runner.states()["units"]["legacy"].units
    assert units["a"].display_state == "completed" and units["a"].transitions == 5
    assert units["b"].state == "queued"
    at3 = system_view(runner.state_at(3), 3)["plans"]["legacy"]
    assert at3["units"]["a"]["state"] == "running" and "b" not in at3["units"]
    assert runner.state_at(3) == fold_from_zero(ps, registry.ALL, 3)
    store.close()
