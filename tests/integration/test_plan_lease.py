"""One live run per plan, fenced (behaviour §1; issue 11).

Deterministic: another process's entry is written into the log exactly
between this run's fold (and pid probe) and its first append, the window
in which two simultaneous starts of one plan both believed they owned it.
The late starter must write nothing and refuse (exit 2) naming the live run,
its pid and host; a run that lost its lease afterwards must write nothing
more. tests/reliability/test_simultaneous_starts.py does the same with
real processes started at once.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from uok.adapters.eventlog import EventLog
from uok.adapters.runner import KernelRunner, fold_log
from uok.adapters.stores import open_event_store
from uok.domain import events as ev
from uok.domain.kernel import Kernel
from uok.domain.log.store import StreamMoved

from tests.helpers import StepClock
from tests.run_support import task_plan
from uok import bootstrap
from uok.errors import InputError


@pytest.fixture
def live_pid():
    """A process that is alive for the whole test (the rival run's pid)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def rival_enters(db: Path, plan: Path, pid: int, run_id: str = "r-rival") -> None:
    """What a second process starting the same plan appends: its
    KernelEntered, the decisions the kernel takes on it and its lease, in
    one append."""
    with open_event_store(db, create=True) as store:
        log = EventLog(store)
        kernel = Kernel()
        fold_log(log, kernel)
        plan_id = bootstrap.prepare_run(plan).graph.plan_id
        clock = StepClock()
        lease = ev.PlanLeased(
            run_id=run_id,
            at=clock(),
            plan_id=plan_id,
            epoch=kernel.state.leases.get(plan_id, 0) + 1,
            pid=pid,
            host="rival-host",
        )
        entered = ev.KernelEntered(
            run_id=run_id,
            at=clock(),
            pid=pid,
            host="rival-host",
            plan_path=str(plan),
            plan_source=plan.read_text(),
            workers=1,
            flags={"turn_closeout": True},
        )
        decisions = kernel.handle(entered)
        log.append([entered, *decisions, lease, *kernel.handle(lease)])


def runner_for(db: Path, plan: Path) -> tuple[KernelRunner, EventLog]:
    log = EventLog(open_event_store(db, create=True))
    return bootstrap.assemble_runner(log, bootstrap.prepare_run(plan), workers=2, clock=StepClock()), log


def test_a_start_that_loses_the_race_writes_nothing_and_names_the_live_run(tmp_path, monkeypatch, live_pid):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass"), ("b", "pass")], plan_id="fenced")
    db = tmp_path / "events.db"
    runner, log = runner_for(db, plan)
    probe = KernelRunner._probe_open_runs
    calls = []

    def probe_then_lose_the_race(self, plan_id):
        calls.append(plan_id)
        probes = probe(self, plan_id)  # nothing live yet: this run believes it owns the plan
        if len(calls) == 1:
            rival_enters(db, plan, live_pid)  # ... and another process enters before our append
        return probes

    monkeypatch.setattr(KernelRunner, "_probe_open_runs", probe_then_lose_the_race)
    with pytest.raises(InputError) as refused:
        runner.run()
    message = str(refused.value)
    assert "r-rival" in message and f"pid {live_pid}" in message and "rival-host" in message
    assert refused.value.exit_code == 2
    written = [e for _, e in log.events()]
    log.store.close()
    assert {e.run_id for e in written} == {"r-rival"}, "the loser wrote something"
    assert not [e for e in written if isinstance(e, ev.TurnStarted) and e.run_id != "r-rival"]
    assert len(calls) == 2  # refused on the second probe, after the failed append


def test_a_start_that_loses_to_a_finished_run_tries_again_and_runs_nothing_twice(tmp_path, monkeypatch):
    """The rival's pid is dead by the time the loser looks again: the loser
    recovers it and proceeds (its entry retried, not a second lease)."""
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")], plan_id="fenced2")
    db = tmp_path / "events.db"
    runner, log = runner_for(db, plan)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    probe = KernelRunner._probe_open_runs
    calls = []

    def probe_then_lose_the_race(self, plan_id):
        probes = probe(self, plan_id)
        if not calls:
            rival_enters(db, plan, int(dead.stdout))
        calls.append(plan_id)
        return probes

    monkeypatch.setattr(KernelRunner, "_probe_open_runs", probe_then_lose_the_race)
    result = runner.run()
    assert result.status == "ok"
    events = [e for _, e in log.events()]
    log.store.close()
    leases = [e for e in events if isinstance(e, ev.PlanLeased)]
    assert [(e.run_id, e.epoch) for e in leases] == [("r-rival", 1), (result.run_id, 2)]
    assert [e.recovered_run for e in events if isinstance(e, ev.RunRecovered)] == ["r-rival"]


def test_a_run_that_lost_its_lease_cannot_append(tmp_path):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")], plan_id="fenced3")
    db = tmp_path / "events.db"
    runner, log = runner_for(db, plan)
    assert runner.run().status == "ok"
    lease = runner._lease
    assert lease == {"lease:fenced3": 1}
    rival_enters(db, plan, 1, run_id="r-took-over")  # epoch 2: the plan's lease moved on
    before = log.store.head()
    with pytest.raises(StreamMoved, match="lease:fenced3"):
        log.append(
            [ev.SignalReceived(run_id=runner.run_id, at=StepClock()(), signal="SIGTERM")],
            expect=lease,
        )
    assert log.store.head() == before
    log.store.close()


def test_unit_versions_come_from_the_fold_not_from_the_store(tmp_path):
    """A unit stream moved by another writer after this process folded it
    makes the append fail whole (true optimistic concurrency)."""
    db = tmp_path / "events.db"
    with open_event_store(db, create=True) as store:
        log = EventLog(store)
        move = ev.UnitTransitioned(
            run_id="r1",
            at=StepClock()(),
            plan_id="p",
            unit_id="u",
            from_state="",
            to_state="queued",
            attempt=1,
            dispatches=0,
        )
        log.append([move])
        other = EventLog(store)  # another writer, same fold position
        other.append([move], versions={"unit:p:u": 1})  # it moved the stream to 2
        with pytest.raises(Exception, match="already has version 2"):
            log.append([move], versions={"unit:p:u": 1})  # our fold says 1: conflict, not version 3
        assert store.stream_version("unit:p:u") == 2


def test_the_refusal_names_the_host_the_live_run_recorded(tmp_path, live_pid):
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")], plan_id="fenced4")
    db = tmp_path / "events.db"
    rival_enters(db, plan, live_pid)
    runner, log = runner_for(db, plan)
    with pytest.raises(InputError, match=rf"pid {live_pid} on rival-host"):
        runner.run()
    assert socket.gethostname() != "rival-host"
    log.store.close()
