"""A task's output moved into its sinks while it runs, in one go or several.

:class:`Pump` is the loop that used to be the executor's ``_pump``: it
reads the task's stdout and stderr into their sinks until the leader has
exited and both pipes are closed, enforcing the timeout, the heartbeat and
any stop asked for meanwhile, and hands over progress lines and usage as
the task writes them. :meth:`Pump.run` may stop at a given time and be
called again later, from another thread (never from two at once): the run
loop pumps a chain's task on its own thread for a moment and hands what is
left to a worker only if the task is still running then (issue 15,
:mod:`uok.adapters.turnwork`). Split out of :mod:`uok.adapters.executor`.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from uok.adapters.taskprocess import TaskProcess
from uok.domain.events import ModelUsage

if TYPE_CHECKING:
    from uok.adapters.childproc import Leader

__all__ = ["TICK", "Pump", "UsageWatch"]


class Sink(Protocol):
    """Where one of the task's streams goes (an OutputSink, an agent's stream)."""

    def write(self, chunk: bytes) -> None: ...


_CHUNK = 64 * 1024
TICK = 0.25  # longest sleep of a turn's loop: how late a pending SIGKILL or a progress report may be
_LEFTOVER_WAIT = 1.0  # after the leader exits, how long its group may keep the pipes open


class Pump:
    """Move the task's output into its sinks until the leader has exited and
    both pipes are closed, enforcing the timeout, the heartbeat and any stop
    asked for meanwhile. ``timed_out`` says whether it timed out (or fell
    silent). ``out`` and ``err`` are each a pipe's read end (a bare
    descriptor, which the pump owns and closes) and its sink. It waits with
    ``poll(2)`` on the descriptors themselves: no selector objects, no
    descriptor of its own to make and close per task (``epoll`` costs four
    more system calls a turn; issue 15)."""

    def __init__(
        self,
        proc: Leader,
        task: TaskProcess,
        out: tuple[int, Sink],
        err: tuple[int, Sink],
        timeout: float,
        heartbeat: float | None,
        progress: str | Path,
        on_progress: Callable[[str], None] | None,
        watch: UsageWatch | None = None,
    ):
        self.proc, self.task, self.heartbeat, self.watch = proc, task, heartbeat, watch
        self.last_activity = time.monotonic()
        self.deadline = self.last_activity + timeout
        self.reader = _ProgressReader(progress, on_progress)
        self.leader_exit: float | None = None
        self.timed_out = False
        self.done = False
        self._open: dict[int, Sink] = dict((out, err))  # pipe descriptor -> its sink, until its EOF
        self._poll = select.poll()
        for fd in self._open:
            self._poll.register(fd, select.POLLIN)

    def run(self, until: float | None = None) -> bool:
        """Pump until the task is done (True), or until the monotonic time
        ``until`` has passed with the task still running (False: call again
        to go on). On an exception the pump is closed (the pipes too)."""
        if self.done:
            return True
        try:
            if not self._loop(until):
                return False
            self.reader.poll(final=True)  # what it reported since the last look, however recent that was
            self._close_pipes()
            self.proc.wait()
        except BaseException:
            self.close()
            raise
        self.close()
        return True

    def close(self) -> None:
        self.done = True
        self._close_pipes()

    def _close_pipes(self) -> None:
        for fd in list(self._open):
            self._eof(fd)

    def _eof(self, fd: int) -> None:
        del self._open[fd]
        self._poll.unregister(fd)
        os.close(fd)

    def _loop(self, until: float | None) -> bool:
        proc, task, open_, heartbeat = self.proc, self.task, self._open, self.heartbeat
        while True:
            now = time.monotonic()
            task.enforce(now)
            if not task.stopping:
                if now >= self.deadline:
                    self.timed_out = True
                    task.stop("timeout", now=now)
                elif heartbeat and now - self.last_activity >= heartbeat:
                    self.timed_out = True
                    task.stop("heartbeat", now=now)
            if proc.poll() is not None:
                if not open_:
                    return True
                self.leader_exit = self.leader_exit or now
                if now - self.leader_exit >= _LEFTOVER_WAIT and not task.stopping:
                    task.end_leftovers()  # background jobs still hold the pipes
                if now - self.leader_exit >= _LEFTOVER_WAIT + task.grace + 2 * TICK:
                    return True  # the pipes are held by a process outside the group: stop reading
            if until is not None and now >= until:
                return False
            wait = TICK
            if not task.stopping:
                wait = min(wait, max(0.0, self.deadline - now))
            if until is not None:
                wait = min(wait, until - now)
            if open_:
                for fd, _ in self._poll.poll(math.ceil(wait * 1e3) if wait > 0 else 0):
                    data = os.read(fd, _CHUNK)
                    if data:
                        open_[fd].write(data)
                        self.last_activity = time.monotonic()
                    else:
                        self._eof(fd)
            else:
                _wait_exit(proc, wait)  # pipes closed, leader still running
            if self.reader.poll():
                self.last_activity = time.monotonic()
            if self.watch is not None:
                self.watch.poll()


class UsageWatch:
    """The usage file read while the task runs: each poll hands complete new
    lines, parsed and priced (:mod:`uok.adapters.usage`), to ``on_usage``;
    :meth:`rest` returns what is left when it has exited (everything, with
    no ``on_usage``: the file is then read once, at the end)."""

    def __init__(self, path: str | Path, on_usage: Callable[[tuple[ModelUsage, ...]], None] | None, model: str = ""):
        self.path, self.on_usage = path, on_usage
        self.model = model  # the model the task was handed: a line naming none is its usage
        self.offset, self.line = 0, 1
        self._checked = time.monotonic()  # first look a tick after the start (rest() reads what is left)

    def _read(self, *, final: bool) -> tuple[ModelUsage, ...]:
        if not os.access(self.path, os.F_OK):  # most tasks report none: no failed open to raise and catch
            return ()
        from uok.adapters.usage import parse_lines, price_usage

        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return ()
        end = len(data) if final else data.rfind(b"\n") + 1
        if end <= 0:
            return ()
        lines = data[:end].splitlines()
        self.offset += end
        rows = parse_lines(lines, first=self.line, default_model=self.model)
        self.line += len(lines)
        return tuple(price_usage(u) for u in rows)

    def poll(self) -> None:
        if self.on_usage is None:
            return
        now = time.monotonic()
        if now - self._checked < TICK:
            return
        self._checked = now
        rows = self._read(final=False)
        if rows:
            self.on_usage(rows)

    def rest(self) -> tuple[ModelUsage, ...]:
        return self._read(final=True)


def _wait_exit(proc: Leader, timeout: float) -> None:
    """Wait up to ``timeout`` for the leader to exit: woken by its pidfd at
    the exit (Linux), not by ``Popen.wait``'s sleep polling (which cost
    about a millisecond a turn, issue 15); elsewhere that polling."""
    pidfd_open = getattr(os, "pidfd_open", None)
    fd = None
    if pidfd_open is not None:
        with contextlib.suppress(OSError):
            fd = pidfd_open(proc.pid)  # not reaped yet (Popen reaps in poll/wait): still this process
    if fd is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        return
    try:
        select.select([fd], [], [], timeout)
    finally:
        os.close(fd)


class _ProgressReader:
    """Complete lines appended to a task's progress file, handed over once each."""

    MAX_LINE = 4096

    def __init__(self, path: str | Path, on_line: Callable[[str], None] | None):
        self.path, self.on_line = path, on_line
        self.offset = 0
        self._checked = time.monotonic()  # first look a tick after the start (the final look reads the rest)

    def poll(self, *, final: bool = False) -> bool:
        """True if the task reported something since the last call. At most
        once a :data:`TICK`, except the ``final`` look once the task is done
        (a report made within a tick of the one before was lost otherwise)."""
        if self.on_line is None:
            return False
        now = time.monotonic()
        if now - self._checked < TICK and not final:
            return False
        self._checked = now
        if not os.access(self.path, os.F_OK):  # most tasks report no progress: no failed stat to raise
            return False
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return False
        if size <= self.offset:
            return False
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(min(size - self.offset, 64 * 1024))
        end = data.rfind(b"\n") + 1
        if end == 0:
            return False
        self.offset += end
        for line in data[:end].splitlines():
            text = line.decode("utf-8", errors="replace").strip()[: self.MAX_LINE]
            if text:
                self.on_line(text)
        return True
