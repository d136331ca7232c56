"""Shared pieces of the worker tests (issue 16): a plan of independent
tasks that leave side-effect files, and real ``uok run --claims`` /
``uok worker`` processes on a log target (a SQLite file or a PostgreSQL URL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from uok.domain import events as ev

from tests.conftest import ROOT

# Each task records that it started (its pid, to kill it like a lost host),
# waits until the test lets tasks finish (a file), then creates its unit's
# done-file with O_EXCL: a second completion of the same unit fails loudly.
TASK = (
    "import os, pathlib, sys, time\n"
    "d = pathlib.Path(os.environ['W_OUT']); u = os.environ['UOK_UNIT_ID']; t = os.environ['UOK_TURN_ID']\n"
    "(d / f'started-{u}-{t}').write_text(str(os.getpid()))\n"
    "while not (d / 'release').exists(): time.sleep(0.02)\n"
    "fd = os.open(d / f'done-{u}', os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"
    "os.write(fd, t.encode()); os.close(fd)\n"
)


def parallel_plan(path: Path, units: int, *, plan_id: str = "wp", source: str = TASK, retries: int = 2) -> Path:
    """A plan of ``units`` independent tasks running ``source`` with this interpreter."""
    esc = source.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    body = f'[plan]\nid = "{plan_id}"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for i in range(units):
        body += (
            f'[[milestones.slices.tasks]]\nid = "u{i}"\ncommand = ["{sys.executable}", "-c", "{esc}"]\n'
            f"depends_on = []\nretries = {retries}\n"
        )
    path.write_text(body)
    return path


def uok_env(out: Path | None = None, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("UOK_DB", None)
    if out is not None:
        env["W_OUT"] = str(out)
    return env


def uok(
    target: Path | str,
    *args: str,
    env: dict[str, str],
    cwd: Path,
    prefix: Sequence[str] = (),
) -> subprocess.Popen[str]:
    """``uok --db TARGET ARGS`` as its own process (``prefix``: e.g. ``ip netns exec NS``)."""
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "uok", "--db", str(target), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_run(target: Path | str, plan: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return uok(target, "run", str(plan), "--claims", "--quiet", "--workers", "8", *extra, env=env, cwd=plan.parent)


def start_worker(
    target: Path | str, env: dict[str, str], cwd: Path, *extra: str, lease: float = 2.0, prefix: Sequence[str] = ()
) -> subprocess.Popen[str]:
    return uok(target, "worker", "--lease", str(lease), "--wait", "120", *extra, env=env, cwd=cwd, prefix=prefix)


def finish(p: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    out, err = p.communicate(timeout=timeout)
    return p.returncode, out, err


def wait_for(fact: Callable[[], Any], what: str, timeout: float = 120.0) -> Any:
    """Poll ``fact`` until it is truthy (an observed fact: a file, a log position)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fact()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def events_of(target: Path | str) -> list[tuple[int, ev.Event]]:
    from uok.adapters.eventlog import EventLog
    from uok.adapters.log_store import open_log_store

    store = open_log_store(target)
    try:
        return list(EventLog(store).events())
    finally:
        store.close()


def completions(events: list[tuple[int, ev.Event]]) -> dict[str, int]:
    """Unit id -> how many times the log says it completed."""
    out: dict[str, int] = {}
    for _, e in events:
        if isinstance(e, ev.UnitTransitioned) and e.to_state == "completed" and e.unit_id.startswith("u"):
            out[e.unit_id] = out.get(e.unit_id, 0) + 1
    return out


def create_log(target: Path | str) -> None:
    """Create the (empty) log before processes race to open it."""
    from uok.adapters.log_store import open_log_store

    open_log_store(target, create=True).close()
