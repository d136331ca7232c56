"""Ending what a dead run left running, before anything runs again.

Why: a task is started with ``Popen(process_group=0)`` (its own process
group, so a stop reaches its whole tree) and no per-child death signal: a
``preexec_fn`` that set Linux's ``PR_SET_PDEATHSIG`` forced CPython's slow
``fork`` path and made every spawn several times a bare
``subprocess.run`` (issue 15). So ``kill -9`` of ``uok run`` leaves its
tasks, and whatever they started, running. The next ``uok run`` probes
the runs left open (``PidProbe``); for every one found dead it ends, before
the kernel re-queues and re-runs that run's units, every process group
holding a process whose environment names that run (``UOK_RUN_ID``, which
the executor and the gates give every task and every gate command, and
which their children inherit; the run id itself is in the log). How many
processes were ended is recorded in the probe (``PidProbe.ended``).

Linux only (it reads ``/proc/<pid>/environ``); elsewhere nothing is found.
A process that cleared its environment or left for another user is not
found: the same limits the death signal had for grandchildren, and fewer.
Never ends the calling process nor its own process group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterable
from pathlib import Path

__all__ = ["end_leftovers", "leftovers"]

PROC = Path("/proc")
ROUNDS = 5  # rescans: a leftover may fork while its group is being ended


def leftovers(run_ids: Iterable[str], proc: Path = PROC) -> dict[int, str]:
    """Processes whose environment names one of ``run_ids``: pid -> run id."""
    wanted = {f"UOK_RUN_ID={r}".encode(): r for r in run_ids if r}
    found: dict[int, str] = {}
    if not wanted:
        return found
    me = os.getpid()
    try:
        entries = list(os.scandir(proc))
    except OSError:
        return found  # no /proc here
    for entry in entries:
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            with open(os.path.join(entry.path, "environ"), "rb") as f:
                environ = f.read()
        except OSError:
            continue  # gone, or not ours to read
        for var in environ.split(b"\0"):
            run = wanted.get(var)
            if run is not None:
                found[int(entry.name)] = run
                break
    return found


def end_leftovers(run_ids: Iterable[str], proc: Path = PROC) -> dict[str, int]:
    """``SIGKILL`` the process groups of the leftovers of ``run_ids`` (dead
    runs: nothing of theirs may keep writing); how many processes each run had."""
    runs = set(run_ids)
    seen: dict[int, str] = {}
    mine = os.getpgrp()
    for _ in range(ROUNDS):
        found = leftovers(runs, proc)
        if not found:
            break
        seen.update(found)
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                pgid = os.getpgid(pid)
                if pgid == mine:
                    os.kill(pid, signal.SIGKILL)  # never our own group: only that process
                else:
                    os.killpg(pgid, signal.SIGKILL)
        _reap(found)
    ended: dict[str, int] = {}
    for run in seen.values():
        ended[run] = ended.get(run, 0) + 1
    return ended


def _reap(pids: Iterable[int]) -> None:
    """Collect leftovers that are our own children (a test's, an embedding
    program's), so they do not linger as zombies and are not found again."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
