"""A task's process group, and stopping it gracefully.

Every task runs in its own process group (its own session), so a stop
reaches the whole tree it started. Stopping is graceful (behaviour:
graceful stop): ``SIGTERM`` to the group, a grace period for the task to
save its state and exit, then ``SIGKILL`` to whatever is left. A second
stop request (a second Ctrl-C) does not wait any longer: it kills at once.
:class:`StopRecord` (in ``ExecutionFinished.stop``) says why the task was
stopped, which signals it got and the grace it was given.

The grace period is the task's ``grace`` (plan), else ``uok run --grace``,
else ``[uok.tasks] grace_seconds``, else :data:`DEFAULT_GRACE` seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import TYPE_CHECKING

from uok.domain.events import StopRecord

if TYPE_CHECKING:
    from uok.adapters.childproc import Leader

DEFAULT_GRACE = 10.0


def signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send ``sig`` to a process group; False if it is gone (or not ours)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class TaskProcess:
    """One started task: its leader process and its process group.

    ``stop`` may be called from any thread; the executor's worker thread,
    which reads the task's output, calls :meth:`enforce` on every wake-up to
    deliver the ``SIGKILL`` when the grace period is over."""

    def __init__(self, proc: Leader, grace: float = DEFAULT_GRACE):
        self.proc = proc
        self.pgid = proc.pid  # start_new_session: the leader's pid is the group id
        self.grace = grace
        self._lock = threading.Lock()
        self._reason = ""
        self._signals: list[str] = []
        self._kill_at: float | None = None

    @property
    def stopping(self) -> bool:
        return bool(self._reason)

    def stop(self, reason: str, *, grace: float | None = None, now: float | None = None) -> None:
        """Ask the task to stop: ``SIGTERM`` now, ``SIGKILL`` after the grace.
        A stop requested while one is under way kills at once."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._reason:
                self._kill_at = now  # asked twice (a second Ctrl-C): no more waiting
            else:
                self._reason = reason
                self.grace = self.grace if grace is None else grace
                if self.grace <= 0:
                    self._kill_at = now
                else:
                    if signal_group(self.pgid, signal.SIGTERM):
                        self._signals.append("SIGTERM")
                    self._kill_at = now + self.grace
        self.enforce(now)

    def kill(self, reason: str) -> None:
        """Stop without grace (the runner itself is going down)."""
        self.stop(reason, grace=0.0)

    def enforce(self, now: float | None = None) -> None:
        """``SIGKILL`` the group once the grace period is over."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._kill_at is None or now < self._kill_at or "SIGKILL" in self._signals:
                return
            if self.proc.poll() is not None and not _group_alive(self.pgid):
                return  # it exited within its grace: nothing to kill
            if signal_group(self.pgid, signal.SIGKILL):
                self._signals.append("SIGKILL")

    def seconds_to_kill(self, now: float | None = None) -> float | None:
        """Seconds until the pending ``SIGKILL``, None if none is pending."""
        with self._lock:
            if self._kill_at is None or "SIGKILL" in self._signals:
                return None
            return max(0.0, self._kill_at - (time.monotonic() if now is None else now))

    def record(self) -> StopRecord | None:
        with self._lock:
            if not self._reason:
                return None
            return StopRecord(reason=self._reason, signals=tuple(self._signals), grace_s=self.grace)

    def end_leftovers(self) -> None:
        """After the leader exited: the processes it left in its group
        (a background job still holding the output pipes) are stopped too,
        gracefully; a task ends when its leader does."""
        if _group_alive(self.pgid):
            self.stop("leftovers")


def _group_alive(pgid: int) -> bool:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, 0)
        return True
    return False
