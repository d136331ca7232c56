"""A chain's task started on the run loop's own thread (uok.adapters.turnwork,
issue 15): what is still running when the loop's window ends is pumped to
its end by a worker, with nothing of its output, its exit or its timeout lost."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from uok.adapters import executor as executor_module
from uok.adapters import turnwork
from uok.domain import events as ev

from uok import bootstrap

PY = sys.executable


def _plan(tmp_path: Path, tasks: str) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text('[plan]\nid = "w"\n[[milestones]]\nid = "M"\n[[milestones.slices]]\nid = "S"\n' + tasks)
    return plan


def _run(tmp_path: Path, plan: Path, monkeypatch) -> tuple[list[ev.Event], dict[str, set[str]]]:
    """Run the plan with a window of 0 s: every task still running after its
    start is handed to the pool. Returns the events and, per turn, the
    threads that started and finished pumping it."""
    monkeypatch.setattr(turnwork, "INLINE_WINDOW", 0.0)
    threads: dict[str, set[str]] = {}
    real_pump = executor_module.RunningTurn.pump

    def pump(self, until=None):
        done = real_pump(self, until)
        threads.setdefault(self.turn_id, set()).add(("done " if done else "left ") + threading.current_thread().name)
        return done

    monkeypatch.setattr(executor_module.RunningTurn, "pump", pump)
    log = bootstrap.open_log(str(tmp_path / "e.db"), create=True, synchronous="FULL")
    runner = bootstrap.assemble_runner(log, bootstrap.prepare_run(plan), workers=1)
    runner.run()
    events = [e for _, e in log.events()]
    log.store.close()
    return events, threads


def test_a_task_still_running_after_the_window_is_finished_by_a_worker_with_all_its_output(tmp_path, monkeypatch):
    # t0 is a Python process: it cannot have exited in the instant between its start and the first look
    script = (
        "import sys, time; print('before', flush=True); time.sleep(0.3); print('after'); print('err', file=sys.stderr)"
    )
    plan = _plan(
        tmp_path,
        f'[[milestones.slices.tasks]]\nid = "t0"\ncommand = ["{PY}", "-c", "{script}"]\n'
        '[[milestones.slices.tasks]]\nid = "t1"\ncommand = ["true"]\n',
    )
    events, threads = _run(tmp_path, plan, monkeypatch)
    finished = {e.unit_id: e for e in events if isinstance(e, ev.ExecutionFinished)}
    assert finished["t0"].exit_code == 0 and finished["t1"].exit_code == 0
    assert finished["t0"].stdout_tail == "before\nafter\n" and finished["t0"].stderr_tail == "err\n"
    assert finished["t0"].stdout_log is not None and finished["t0"].stdout_log.size == len("before\nafter\n")
    t0 = next(e.turn_id for e in events if isinstance(e, ev.TurnStarted) and e.unit_id == "t0")
    main = threading.main_thread().name
    assert threads[t0] == {f"left {main}", "done uok-worker_0"}, threads  # started here, finished in the pool
    closed = {e.turn_id for e in events if isinstance(e, ev.TurnClosed)}
    assert t0 in closed


def test_a_timeout_still_applies_to_a_task_handed_to_a_worker(tmp_path, monkeypatch):
    plan = _plan(
        tmp_path,
        f'[[milestones.slices.tasks]]\nid = "slow"\ncommand = ["{PY}", "-c", "import time; time.sleep(30)"]\n'
        "timeout = 0.5\nretries = 0\ngrace = 1\n",
    )
    events, threads = _run(tmp_path, plan, monkeypatch)
    (finished,) = [e for e in events if isinstance(e, ev.ExecutionFinished)]
    assert finished.timed_out and finished.exit_code != 0
    assert finished.stop is not None and finished.stop.reason == "timeout"
    assert {t.split()[0] for t in threads[finished.turn_id]} == {"left", "done"}
