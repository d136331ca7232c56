"""Group commits (issue 15): a run's bookkeeping commits share one fsync,
and nothing acts before what it follows from is durable.

The store defers the fsync of each commit while a run groups them
(``SqliteEventStore.defer_sync``) and makes everything durable with one
``fdatasync`` of the WAL at ``sync()``; the runner syncs before every
action. The real fsync runs; the tests only count the calls.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from uok.adapters import head_anchor, turnwork
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.log.errors import IntegrityError
from uok.domain.log.store import NewRecord

from uok import bootstrap


@pytest.fixture
def fdatasyncs(monkeypatch):
    """How often the WAL was fdatasync'ed (the call itself still happens)."""
    calls: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    return calls


def record(i: int) -> NewRecord:
    return NewRecord(stream=f"s{i}", version=1, topic="T/v0", payload=b"{}")


def test_deferred_commits_are_made_durable_by_one_sync(tmp_path: Path, fdatasyncs):
    with SqliteEventStore(tmp_path / "e.db") as store:
        assert store.defer_sync(True)
        for i in range(10):
            store.append([record(i)])
        assert store.unsynced and fdatasyncs == []
        store.sync()
        assert not store.unsynced and len(fdatasyncs) == 1
        store.sync()  # nothing new: no second fsync
        assert len(fdatasyncs) == 1
        store.append([record(10)])
        assert store.defer_sync(False) is False  # turning it off syncs what is pending
        assert len(fdatasyncs) == 2 and not store.unsynced
        store.append([record(11)])  # FULL again: SQLite syncs the commit itself
        assert not store.unsynced and len(fdatasyncs) == 2
    with SqliteEventStore(tmp_path / "e.db") as again:
        assert again.head()[0] == 12


def test_the_head_anchor_never_runs_ahead_of_what_is_durable(tmp_path: Path):
    """``<log>-head`` (uok.adapters.head_anchor) names committed events verify
    must find: under group commits it is written at each sync, so a power
    cut before a sync cannot make verify report a loss the design allows."""
    db = tmp_path / "a.db"
    with SqliteEventStore(db) as store:
        store.append([record(0)])
        assert head_anchor.read(db)[0] == 1
        store.defer_sync(True)
        store.append([record(1)])
        store.append([record(2)])
        assert head_anchor.read(db)[0] == 1  # not durable yet: the anchor lags
        store.sync()
        assert head_anchor.read(db)[0] == 3


def test_a_normal_store_never_defers(tmp_path: Path):
    with SqliteEventStore(tmp_path / "n.db", synchronous="NORMAL") as store:
        assert store.defer_sync(True) is False
        store.append([record(0)])
        assert not store.unsynced


@pytest.mark.parametrize("inline", [True, False], ids=["on-the-loop-thread", "in-the-pool"])
def test_a_run_syncs_before_each_process_starts_and_about_once_per_task(
    tmp_path: Path, fdatasyncs, inline: bool, monkeypatch
):
    """Every event recorded before a task's process starts (its TurnStarted,
    its writer token) is durable when it starts; a chain costs about one
    fsync per task, not one per commit. Whether the loop starts a chain's
    task on its own thread (uok.adapters.turnwork) or a worker does."""
    monkeypatch.setattr(turnwork, "INLINE", inline)
    tasks = 6
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "g"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n' for i in range(tasks))
    )
    log = bootstrap.open_log(str(tmp_path / "e.db"), create=True, synchronous="FULL")
    prepared = bootstrap.prepare_run(plan)
    runner = bootstrap.assemble_runner(log, prepared, workers=1)
    store = log.store
    synced = {"head": 0}
    commits = {"n": 0}
    real_sync, real_append = store.sync, store.append

    def sync() -> None:
        real_sync()
        synced["head"] = store.head()[0]  # everything up to here is durable

    def append(*a, **kw):
        commits["n"] += 1
        return real_append(*a, **kw)

    at_spawn: dict[str, int] = {}
    threads: set[str] = set()
    real_begin = runner.executor.begin  # where every process starts (execute calls it too)

    def begin(node, *, turn_id, **kw):
        at_spawn[turn_id] = synced["head"]
        threads.add(threading.current_thread().name)
        return real_begin(node, turn_id=turn_id, **kw)

    store.sync, store.append = sync, append  # type: ignore[method-assign]
    runner.executor.begin = begin  # type: ignore[method-assign]
    started = datetime.now(UTC)
    assert runner.run().exit_code == 0
    assert not store.unsynced  # the run returned with everything durable
    events = list(log.events())
    assert len(at_spawn) == tasks
    assert threads == ({threading.main_thread().name} if inline else {"uok-worker_0"}), threads
    for turn_id, durable_upto in at_spawn.items():
        recorded = [
            p
            for p, e in events
            if isinstance(e, ev.TurnStarted | ev.WriterTokenAcquired) and e.turn_id == turn_id and e.at >= started
        ]
        assert len(recorded) == 2 and max(recorded) <= durable_upto, (turn_id, recorded, durable_upto)
    # two appends per task (its result with the decisions; the token's release, the closeout and the
    # next token, held back by the runner to the next append) ...
    assert commits["n"] >= 2 * tasks
    assert len(fdatasyncs) <= 1.5 * tasks  # ... sharing about one fsync per task


def test_grouped_appends_share_one_commit_and_a_conflict_undoes_only_itself(tmp_path: Path):
    """``SqliteEventStore.group``: appends are savepoints of one transaction,
    invisible to another connection (and to the head anchor) until
    ``commit``; an append that fails (a stream version taken) undoes only
    itself, the group's other appends commit."""
    db = tmp_path / "g.db"
    with SqliteEventStore(db) as store, SqliteEventStore(db) as other:
        store.append([record(0)])
        assert store.group(True)
        store.append([record(1)])
        with pytest.raises(IntegrityError, match="version 1"):
            store.append([record(1)])  # s1 version 1 again: refused
        store.append([record(2)])
        assert store.head()[0] == 3  # this connection sees its group
        assert other.head()[0] == 1 and head_anchor.read(db)[0] == 1  # nothing committed yet
        store.commit()
        assert other.head()[0] == 3 and head_anchor.read(db)[0] == 3
        store.append([record(3)])
        assert store.group(False) is False  # turning it off commits
        assert other.head()[0] == 4
        store.append([record(4)])  # its own transaction again
        assert other.head()[0] == 5
        assert other.verify_chain()[0] == 5


def test_a_chain_costs_one_commit_per_task(tmp_path: Path):
    """A task's result and decisions, its writer token's release, its
    closeout and the next task's token are one SQLite transaction (issue
    15): counted by SQLite's commit hook on the run's own connection."""
    tasks = 8
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "c"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\n' for i in range(tasks))
    )
    log = bootstrap.open_log(str(tmp_path / "e.db"), create=True, synchronous="FULL")
    runner = bootstrap.assemble_runner(log, bootstrap.prepare_run(plan), workers=1)
    commits: list[int] = []

    def hook() -> bool:
        commits.append(1)
        return False  # False: let the commit proceed

    log.store.connection.set_commit_hook(hook)
    assert runner.checkpoints is not None
    after_run = runner.checkpoints.after_run

    def uncounted() -> None:  # the read models' first build on a fresh log is not the run's
        log.store.connection.set_commit_hook(None)
        after_run()

    runner.checkpoints.after_run = uncounted  # type: ignore[method-assign]
    assert runner.run().exit_code == 0
    events = list(log.events())
    turns = sum(isinstance(e, ev.TurnStarted) for _, e in events)  # the tasks and the slice's completion
    assert turns > tasks
    assert sum(isinstance(e, ev.TurnClosed) for _, e in events) == turns
    assert sum(isinstance(e, ev.WriterTokenReleased) for _, e in events) == turns
    # one per turn (the entry's holds the first), plus the run's last
    assert len(commits) <= turns + 2, (len(commits), turns)


def test_a_turn_stopped_in_the_same_batch_as_its_dispatch_never_starts(tmp_path: Path):
    """Observations waiting together are stepped together and acted on after
    (issue 15): when t0's result dispatches t1 and a Ctrl-C stepped in the
    same batch stops t1's turn, t1's process is never started (its
    closeout is recorded at once), and the run ends terminated."""
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "b"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n'
        '[[milestones.slices.tasks]]\nid = "t0"\ncommand = ["true"]\n'
        '[[milestones.slices.tasks]]\nid = "t1"\ncommand = ["true"]\n'
    )
    log = bootstrap.open_log(str(tmp_path / "e.db"), create=True, synchronous="FULL")
    runner = bootstrap.assemble_runner(log, bootstrap.prepare_run(plan), workers=1)
    results = runner._results
    real_put = results.put

    def put(obs, *a, **kw):
        if isinstance(obs, ev.ExecutionFinished) and obs.unit_id == "t0":
            signal = ev.SignalReceived(run_id=obs.run_id, at=obs.at, signal="SIGINT")
            with results.mutex:  # both at once: the loop takes them in one batch
                results.queue.extend([obs, signal])
                results.unfinished_tasks += 2
                results.not_empty.notify()
            return None
        return real_put(obs, *a, **kw)

    results.put = put  # type: ignore[method-assign]
    dispatched: list[str] = []
    real_strike = runner.chaos.strike

    def strike(stage, d):
        if stage == "dispatch":
            dispatched.append(d.unit_id)
        return real_strike(stage, d)

    runner.chaos.strike = strike  # type: ignore[method-assign]
    result = runner.run()
    assert result.status == "terminated", result
    assert dispatched == ["t0"]  # t1's turn was started and stopped in one batch: nothing ran
    events = list(log.events())
    started = {e.turn_id for _, e in events if isinstance(e, ev.TurnStarted)}
    closed = {e.turn_id for _, e in events if isinstance(e, ev.TurnClosed)}
    assert len(started) == 2 and closed == started
