"""Helpers for tests that drive `uok run` in the background and read its log."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from uok.adapters.eventlog import EventLog
from uok.adapters.stores import open_event_store
from uok.domain import events as ev

from tests.conftest import ROOT


def task_plan(path: Path, tasks: list[tuple[str, str]], *, plan_id: str = "p", extra: str = "") -> Path:
    """A one-slice chain plan; ``tasks`` is [(id, python source)] run with this interpreter."""
    body = f'[plan]\nid = "{plan_id}"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for tid, src in tasks:
        body += f'[[milestones.slices.tasks]]\nid = "{tid}"\ncommand = {_argv(src)}\n{extra}'
    path.write_text(body)
    return path


def _argv(src: str) -> str:
    esc = src.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'["{sys.executable}", "-c", "{esc}"]'


def start_run(plan: Path, db: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("UOK_DB", None)
    return subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_events(db: Path) -> list[tuple[int, ev.Event]]:
    store = open_event_store(db)
    try:
        return list(EventLog(store).events())
    finally:
        store.close()


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def of_type(events: list[tuple[int, ev.Event]], cls: type) -> list[tuple[int, ev.Event]]:
    return [(p, e) for p, e in events if isinstance(e, cls)]


def run_id_of(db: Path) -> str:
    def entered():
        if not db.exists():
            return None
        try:
            found = of_type(read_events(db), ev.KernelEntered)
        except Exception:  # noqa: BLE001 - the file may be mid-creation
            return None
        return found[-1][1].run_id if found else None

    return wait_for(entered, what="the run to enter")  # type: ignore[return-value]


def assert_turns_closed_once(events: list[tuple[int, ev.Event]], run_id: str) -> int:
    """Every turn of the run: one TurnStarted, exactly one TurnFinished, one TurnClosed,
    its writer token acquired and released once; KernelExited last. Returns the turn count."""
    from uok.domain.events import TurnClosed

    mine = [e for _, e in events if e.run_id == run_id]
    started = [e.turn_id for e in mine if isinstance(e, ev.TurnStarted)]
    finished = [e.turn_id for e in mine if isinstance(e, ev.TurnFinished)]
    closed = [e.turn_id for e in mine if isinstance(e, TurnClosed)]
    acquired = [e.turn_id for e in mine if isinstance(e, ev.WriterTokenAcquired)]
    released = [e.turn_id for e in mine if isinstance(e, ev.WriterTokenReleased)]
    assert len(set(started)) == len(started)
    for turn in started:
        assert finished.count(turn) == 1, (turn, finished.count(turn))
        assert closed.count(turn) == 1, (turn, closed.count(turn))
        assert acquired.count(turn) == 1 and released.count(turn) == 1, turn
    assert sorted(finished) == sorted(started)
    assert isinstance(mine[-1], ev.KernelExited), type(mine[-1]).__name__
    return len(started)
