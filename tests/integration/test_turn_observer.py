"""Turn observers, and: every turn of a recorded run ends with exactly one TurnFinished
(retries, failures, a signal), closes out once, and replays to the same decisions."""

from __future__ import annotations

import signal
from pathlib import Path

from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.events import KernelExitDeferred, TurnClosed
from uok.domain.kernel import Kernel

from tests.run_support import assert_turns_closed_once, of_type, read_events, run_id_of, start_run, wait_for
from uok.bootstrap import build_runner

FLAKY = "import os,sys; p='flaky.marker'; seen=os.path.exists(p); open(p,'a').close(); sys.exit(0 if seen else 1)"


def slices_plan(path: Path, slices: dict[str, list[tuple[str, str, str]]]) -> Path:
    """{slice: [(task id, python source, extra toml lines)]}, one milestone."""
    import sys

    body = '[plan]\nid = "obs"\n[[milestones]]\nid = "M1"\n'
    for sid, tasks in slices.items():
        body += f'[[milestones.slices]]\nid = "{sid}"\n'
        for tid, src, extra in tasks:
            esc = src.replace("\\", "\\\\").replace('"', '\\"')
            body += (
                f'[[milestones.slices.tasks]]\nid = "{tid}"\ncommand = ["{sys.executable}", "-c", "{esc}"]\n{extra}\n'
            )
    path.write_text(body)
    return path


class Recording:
    def __init__(self):
        self.calls: list[tuple] = []

    def on_turn_start(self, turn):
        self.calls.append(("start", turn.turn_id, turn.unit_id))

    def on_phase_result(self, phase, action, data):
        self.calls.append(("phase", data["turn_id"], phase, action, data.get("unit_id")))

    def on_turn_result(self, result):
        self.calls.append(("result", result.turn_id, result.status))


class Exploding:
    def on_turn_start(self, turn):
        raise RuntimeError("observer bug")

    def on_turn_result(self, result):
        raise RuntimeError("observer bug")


def test_observers_see_every_turn_and_a_raising_observer_never_breaks_the_loop(tmp_path: Path):
    plan = slices_plan(
        tmp_path / "plan.toml",
        {
            "S1": [("ok", "pass", ""), ("flaky", FLAKY, "")],
            "S2": [("bad", "import sys; sys.exit(3)", "retries = 1")],
            "S3": [("empty-1", "pass", "")],
        },
    )
    db = tmp_path / "o.db"
    rec = Recording()
    with SqliteEventStore(db) as store:
        runner = build_runner(EventLog(store), plan, workers=2, turn_observers=[Exploding(), rec])
        result = runner.run()
    assert result.status == "failed" and result.units_failed >= 1  # bad failed twice, its slice check blocked
    events = read_events(db)
    turns = [e for _, e in of_type(events, ev.TurnStarted)]
    n = assert_turns_closed_once(events, result.run_id)
    assert n == len(turns) >= 7  # ok, flaky x2, bad x2, empty-1, complete-slice units
    starts = [c[1] for c in rec.calls if c[0] == "start"]
    results = [c[1] for c in rec.calls if c[0] == "result"]
    assert sorted(starts) == sorted(results) == sorted(t.turn_id for t in turns)
    for t in turns:  # each turn's calls: start, dispatch, unit, finalize, result, in that order
        mine = [c for c in rec.calls if c[1] == t.turn_id]
        assert mine[0][0] == "start" and mine[-1][0] == "result"
        assert [c[2] for c in mine if c[0] == "phase"][:3] == ["dispatch", "unit", "finalize"]
        assert all(c[4] == t.unit_id for c in mine if c[0] == "phase")
    statuses = {e.status for _, e in of_type(events, ev.TurnFinished)}
    assert {"completed", "retry", "failed"} <= statuses
    closed = [e for _, e in of_type(events, TurnClosed)]
    assert all(c.observer_errors == 1 and c.token_released for c in closed)


def replay(events: list[tuple[int, ev.Event]], run_id: str) -> int:
    """Re-drive a fresh kernel over the run's recorded observations; every
    observation must produce exactly the decisions recorded right after it."""
    first = next(i for i, (_, e) in enumerate(events) if isinstance(e, ev.KernelEntered) and e.run_id == run_id)
    k = Kernel()
    for _, e in events[:first]:
        k.apply(e)
    checked, i = 0, first
    while i < len(events):
        e = events[i][1]
        j = i + 1
        recorded = []
        while j < len(events) and not type(events[j][1]).OBSERVED:
            recorded.append(events[j][1])
            j += 1
        if type(e).OBSERVED and e.run_id == run_id:
            assert k.handle(e) == recorded, f"divergence at position {events[i][0]} ({type(e).__name__})"
            checked += 1
        else:
            k.apply(e)
            for d in recorded:
                k.apply(d)
        i = j
    return checked


def test_a_run_with_retries_failures_and_a_signal_finishes_every_turn_exactly_once(tmp_path: Path):
    plan = slices_plan(
        tmp_path / "plan.toml",
        {
            "S1": [("flaky", FLAKY, "")],
            "S2": [("bad", "import sys; sys.exit(3)", "retries = 1")],
            "S3": [("long", "import time; open('long.started','w').close(); time.sleep(30)", "")],
        },
    )
    db = tmp_path / "s.db"
    proc = start_run(plan, db, "--workers", "3")
    run_id = run_id_of(db)

    def settled():
        # wait for the outcomes asserted below, not a count of turns: 4 finished
        # turns can also be flaky x2 + complete-slice + bad's first attempt
        events = read_events(db)
        fin = {(e.unit_id, e.status) for _, e in of_type(events, ev.TurnFinished)}
        return (tmp_path / "long.started").exists() and {("bad", "failed"), ("flaky", "completed")} <= fin and events

    wait_for(settled, what="flaky retried, bad failed twice, long running")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 143  # 128 + SIGTERM: a run a signal ended
    events = read_events(db)
    assert assert_turns_closed_once(events, run_id) == 6  # flaky x2, bad x2, long, complete-slice:M1/S1
    fin = {e.unit_id: e.status for _, e in of_type(events, ev.TurnFinished)}
    assert fin["long"] == "stopped" and fin["bad"] == "failed" and fin["flaky"] == "completed"
    exits = [e for _, e in of_type(events, ev.KernelExited)]
    assert exits[-1].status == "terminated" and isinstance(events[-1][1], ev.KernelExited)
    deferred = [e for _, e in of_type(events, KernelExitDeferred)]
    assert deferred and deferred[-1].status == "terminated"
    assert replay(events, run_id) > 10


def test_a_clean_run_replays_decision_for_decision(tmp_path: Path, demo_plan: Path):
    db = tmp_path / "d.db"
    with SqliteEventStore(db) as store:
        result = build_runner(EventLog(store), demo_plan, workers=2).run()
    events = read_events(db)
    assert_turns_closed_once(events, result.run_id)
    assert replay(events, result.run_id) > 20
