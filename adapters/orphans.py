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

A process found is followed down: every process descended from one (by
its parent pid, whatever its group or environment) is a leftover of the
same run. That finds a child that cleared its environment (``env -i``)
or started a session of its own (``setsid``), and a child caught between
its ``exec`` and the kernel laying out its new environment, when
``/proc/<pid>/environ`` reads empty for a moment (seen under a busy core).
A process that reads empty and is neither a kernel thread nor a zombie is
*unsettled*: the scan is repeated (up to ``ROUNDS``) while one is seen, so
one mid-exec at the first scan is read at the next.

Linux only (it reads ``/proc``); elsewhere nothing is found. A process
that cleared its environment and whose parent died before the scan is not
found (it was re-parented away from the run's tree): the same limit the
death signal had, and narrower. Never ends the calling process nor its own
process group.
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


PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread (no environment, ever)


class _Scan:
    """One pass over ``/proc``: who names which run, who is whose child, who is unsettled."""

    def __init__(self, wanted: dict[bytes, str], proc: Path) -> None:
        self.found: dict[int, str] = {}
        self.parent: dict[int, int] = {}
        self.unsettled = 0
        me = os.getpid()
        try:
            entries = list(os.scandir(proc))
        except OSError:
            return  # no /proc here
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            pid = int(entry.name)
            try:
                with open(os.path.join(entry.path, "stat"), "rb") as f:
                    stat = f.read()
                with open(os.path.join(entry.path, "environ"), "rb") as f:
                    environ = f.read()
            except OSError:
                continue  # gone, or not ours to read
            fields = stat.rpartition(b")")[2].split()  # after "(comm)", which may hold spaces
            state, ppid, flags = fields[0], int(fields[1]), int(fields[6])
            self.parent[pid] = ppid
            if not environ:
                if state != b"Z" and not flags & PF_KTHREAD:
                    self.unsettled += 1  # mid-exec, or an empty environment of its own
                continue
            for var in environ.split(b"\0"):
                run = wanted.get(var)
                if run is not None:
                    self.found[pid] = run
                    break

    def with_descendants(self) -> dict[int, str]:
        """``found``, and every process descended from one (the same run)."""
        found = dict(self.found)
        for pid in self.parent:
            chain: list[int] = []
            up = pid
            while up not in found and up in self.parent and len(chain) < 4096:
                chain.append(up)
                up = self.parent[up]
            if up in found:
                for p in chain:
                    found[p] = found[up]
        return found


def leftovers(run_ids: Iterable[str], proc: Path = PROC) -> dict[int, str]:
    """Processes whose environment names one of ``run_ids``, and their
    descendants: pid -> run id."""
    wanted = _wanted(run_ids)
    if not wanted:
        return {}
    return _Scan(wanted, proc).with_descendants()


def end_leftovers(run_ids: Iterable[str], proc: Path = PROC) -> dict[str, int]:
    """``SIGKILL`` the process groups of the leftovers of ``run_ids`` (dead
    runs: nothing of theirs may keep writing); how many processes each run had."""
    seen: dict[int, str] = {}
    mine = os.getpgrp()
    wanted = _wanted(run_ids)
    for _ in range(ROUNDS if wanted else 0):
        scan = _Scan(wanted, proc)
        found = scan.with_descendants()
        if not found:
            if not scan.unsettled:
                break
            os.sched_yield()  # let a process between exec and its environment settle
            continue
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


def _wanted(run_ids: Iterable[str]) -> dict[bytes, str]:
    """The environment entry naming each run -> that run."""
    return {f"UOK_RUN_ID={r}".encode(): r for r in run_ids if r}


def _reap(pids: Iterable[int]) -> None:
    """Collect leftovers that are our own children (a test's, an embedding
    program's), so they do not linger as zombies and are not found again."""
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
