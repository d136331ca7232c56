"""A turn's execution, from its started process to what it measured.

:class:`CommandExecutor` (:mod:`uok.adapters.executor`) builds a task's
environment and files and starts its process; what it hands back is a
:class:`RunningTurn`: the process, its pump and its sinks, pumped in one go
or several (the run loop pumps a chain's task for a moment and hands the
rest to a worker, :mod:`uok.adapters.turnwork`), then finished once into an
:class:`ExecutionOutcome`, the measured part of the ``ExecutionFinished``
observation. Here because a turn's life after its start is its own concern:
closing its sinks, unregistering its process and removing its usage and
spawn files on every way out, normal or not. Split out of
:mod:`uok.adapters.executor`, which re-exports these names.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, NamedTuple

import msgspec
from uok.adapters.agents.stream import AgentStream
from uok.adapters.outputsink import OutputSink
from uok.adapters.pump import Pump, UsageWatch
from uok.adapters.spawnfile import read_spawns
from uok.adapters.taskprocess import TaskProcess
from uok.adapters.turnlogs import TurnFiles
from uok.domain.events import AgentOutcome, ModelUsage, OutputLog, SpawnRequest, StopRecord

if TYPE_CHECKING:
    from uok.adapters.executor import CommandExecutor

__all__ = ["CANNOT_START", "ExecutionOutcome", "RunningTurn", "Started"]

CANNOT_START = "cannot start "  # the error of a command Popen could not start (ExecutionOutcome.cannot_start)


class ExecutionOutcome(msgspec.Struct, frozen=True):
    """What the executor measured. Every field is also a field of the
    ``ExecutionFinished`` observation, which the runner builds from it."""

    exit_code: int | None
    duration_ms: int
    timed_out: bool = False
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    usage: tuple[ModelUsage, ...] = ()
    spawns: tuple[SpawnRequest, ...] = ()
    stdout_log: OutputLog | None = None
    stderr_log: OutputLog | None = None
    stop: StopRecord | None = None
    agent: AgentOutcome | None = None
    cannot_start: bool = False  # Popen failed: no such executable, not executable, bad cwd
    model: str = ""  # the model the task was handed (UOK_MODEL), "" if none


class Started(NamedTuple):
    """A task's process has started: what the runner records about it."""

    turn_id: str
    unit_id: str
    pid: int
    pgid: int
    files: TurnFiles


class RunningTurn:
    """A turn's process from its start (:meth:`CommandExecutor.begin`) to
    its outcome: pumped in one go or several (:meth:`pump`), from any one
    thread at a time, then finished once (:meth:`finish`). Whatever goes wrong on
    the way closes it (:meth:`abandon`): the output files, the process's
    registration, the usage and spawn files."""

    def __init__(self, executor: CommandExecutor, turn_id: str, started: float, model: str, usage: str, spawn: str):
        self.executor, self.turn_id, self.started, self.model = executor, turn_id, started, model
        self.usage_file, self.spawn_file = usage, spawn
        self.out: OutputSink | AgentStream | None = None
        self.err: OutputSink | None = None
        self.watch: UsageWatch | None = None
        self.task: TaskProcess | None = None
        self.pumped: Pump | None = None
        # (exit code, error, timed out, stop record) once the process is gone (or never started)
        self.result: tuple[int | None, str, bool, StopRecord | None] | None = None

    def pump(self, until: float | None = None) -> bool:
        """Pump the task's output until it is done (True) or the monotonic
        time ``until`` has passed with it still running (False)."""
        if self.result is not None:
            return True
        pumped, task = self.pumped, self.task
        assert pumped is not None and task is not None
        try:
            if not pumped.run(until):
                return False
        except BaseException:
            self.abandon()
            raise
        self._unregister()
        self.result = pumped.proc.returncode, "", pumped.timed_out, task.record()
        return True

    def finish(self) -> ExecutionOutcome:
        """The outcome, once :meth:`pump` returned True; the turn is closed."""
        assert self.result is not None and self.out is not None and self.err is not None
        code, error, timed_out, stop = self.result
        try:
            kept_out, kept_err = self.out.close(), self.err.close()
            logs, out = self.executor.logs, self.out
            return ExecutionOutcome(
                exit_code=code,
                duration_ms=int((time.monotonic() - self.started) * 1000),
                timed_out=timed_out,
                error=error,
                stdout_tail=kept_out.tail,
                stderr_tail=kept_err.tail,
                usage=self.watch.rest() if self.watch is not None else (),  # what was not reported while it ran
                model=self.model,
                spawns=read_spawns(self.spawn_file),
                stdout_log=OutputLog(path=logs.record(kept_out.path), size=kept_out.size, sha256=kept_out.sha256),
                stderr_log=OutputLog(path=logs.record(kept_err.path), size=kept_err.size, sha256=kept_err.sha256),
                stop=stop,
                agent=out.outcome(code) if isinstance(out, AgentStream) else None,
                cannot_start=code is None and error.startswith(CANNOT_START),
            )
        finally:
            self._remove_files()

    def abandon(self) -> None:
        """Close everything of a turn that will not finish (an exception on the way)."""
        try:
            if self.pumped is not None and not self.pumped.done:
                self.pumped.close()
            self._unregister()
            for sink in (self.out, self.err):
                if sink is not None:
                    sink.close()
        finally:
            self._remove_files()

    def _unregister(self) -> None:
        ex = self.executor
        with ex._lock:
            if ex._tasks.get(self.turn_id) is self.task:
                ex._tasks.pop(self.turn_id, None)

    def _remove_files(self) -> None:
        for path in (self.usage_file, self.spawn_file):  # read into the outcome: nothing to keep
            if os.access(path, os.F_OK):  # most tasks write neither: no failed unlink to raise and catch
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
