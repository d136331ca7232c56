"""Runs a unit's command as a subprocess: the kernel's only hands.

What a task sees:

* its argv run without a shell (a shell only when the plan says
  ``shell = true``), with cwd = the plan's directory (or the task's ``cwd``
  below it) and the task's ``env`` added;
* ``UOK_RUN_ID``, ``UOK_UNIT_ID``, ``UOK_TURN_ID``, ``UOK_ATTEMPT``;
* ``TRACEPARENT``: W3C trace context naming the run's trace and this
  execution's span (ids derived from the run and turn ids, see
  :mod:`uok.adapters.otel.ids`), so an agent's own OpenTelemetry spans join
  the trace ``uok trace`` exports;
* ``UOK_SPAWN_FILE``: where the task may append sub-agent requests, one
  JSON object per line (see :mod:`uok.adapters.spawnfile`), and
  ``UOK_WORK_MODE`` / ``UOK_MODEL_MODE`` / ``UOK_PERMISSION_PROFILE`` when
  the unit's metadata sets them (always, for sub-agents);
* ``UOK_USAGE_FILE``: a path where the task may append one JSON object per
  line to report model usage, e.g.
  ``{"model": "claude-sonnet-4-6", "input_tokens": 1200, "output_tokens": 300}``.
  Malformed lines are ignored (and counted in the execution's ``error``-free
  report as not usable); the cost guard prices what is reported.

The child runs in its own process group so a timeout or a cancel kills the
whole tree, and it is told to die with the kernel (Linux ``PR_SET_PDEATHSIG``)
so ``kill -9`` of ``uok run`` leaves no orphan still writing files.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
from uok.adapters.otel.ids import traceparent
from uok.adapters.spawnfile import mode_env, read_spawns
from uok.domain.events import ModelUsage, SpawnRequest
from uok.domain.plan import UnitNode

TAIL_BYTES = 4096
_PR_SET_PDEATHSIG = 1


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


def _die_with_parent(parent: int | None = None) -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent is not None and os.getppid() != parent:
        os._exit(137)  # the kernel died (kill -9) between fork and prctl: never run orphaned


def _tail(data: bytes, limit: int = TAIL_BYTES) -> str:
    return data[-limit:].decode("utf-8", errors="replace")


REDACT_WINDOW = 16 * 1024
"""Redaction looks at this much of the output's end, not just the stored
tail: a private key that starts before the tail and ends inside it would
otherwise reach the log as bare base64 lines no pattern recognises. 16 KiB
covers an 8192-bit RSA key (~6.5 KB of PEM) with room to spare, for
~25 ms of scanning on a task that printed that much."""


def read_usage(path: Path) -> tuple[ModelUsage, ...]:
    """Parse the usage file a task wrote; malformed lines are skipped."""
    if not path.exists():
        return ()
    out = []
    for line in path.read_bytes().splitlines():
        if not line.strip():
            continue
        try:
            out.append(msgspec.json.decode(line, type=ModelUsage))
        except msgspec.DecodeError:
            continue
    return tuple(out)


class CommandExecutor:
    """Executes units; one instance serves all worker threads of a run."""

    def __init__(self, root: Path, *, redact: Callable[[str], str] | None = None, env: dict[str, str] | None = None):
        self.root = Path(root)
        self.redact = redact or (lambda s: s)
        self.base_env = dict(os.environ if env is None else env)
        self._procs: dict[str, subprocess.Popen] = {}
        self._cancelled: set[str] = set()
        self._lock = threading.Lock()

    def execute(self, node: UnitNode, *, run_id: str, turn_id: str, attempt: int) -> ExecutionOutcome:
        """Run the unit's command to completion (or timeout); never raises."""
        assert node.command is not None
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="uok-usage-") as tmp:
            usage_file = Path(tmp) / "usage.jsonl"
            spawn_file = Path(tmp) / "spawn.jsonl"
            env = {
                **self.base_env,
                **node.env,
                "UOK_RUN_ID": run_id,
                "UOK_UNIT_ID": node.id,
                "UOK_TURN_ID": turn_id,
                "UOK_ATTEMPT": str(attempt),
                "UOK_USAGE_FILE": str(usage_file),
                "UOK_SPAWN_FILE": str(spawn_file),  # sub-agent requests (uok.adapters.spawnfile)
                "TRACEPARENT": traceparent(run_id, turn_id),  # the turn's execution span (uok.adapters.otel.ids)
                **mode_env(node),
            }
            cwd = self.root / node.cwd if node.cwd else self.root
            args = node.command[0] if node.shell else list(node.command)
            try:
                proc = subprocess.Popen(
                    args,
                    shell=node.shell,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # noqa: PLW1509 (removed by the spawn rework)
                )
            except OSError as exc:
                return ExecutionOutcome(
                    exit_code=None,
                    duration_ms=int((time.monotonic() - started) * 1000),
                    error=f"cannot start {node.command[0]!r}: {exc.strerror or exc}",
                )
            with self._lock:
                self._procs[turn_id] = proc
            timed_out = False
            try:
                out, err = proc.communicate(timeout=node.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                self._kill(proc)
                out, err = proc.communicate()
            finally:
                with self._lock:
                    self._procs.pop(turn_id, None)
            return ExecutionOutcome(
                exit_code=proc.returncode,
                duration_ms=int((time.monotonic() - started) * 1000),
                timed_out=timed_out,
                stdout_tail=self._redacted_tail(out),
                stderr_tail=self._redacted_tail(err),
                usage=read_usage(usage_file),
                spawns=read_spawns(spawn_file),
            )

    def _redacted_tail(self, data: bytes) -> str:
        """The last TAIL_BYTES of the output, redacted with REDACT_WINDOW of context."""
        redacted = self.redact(_tail(data, REDACT_WINDOW)).encode("utf-8", errors="replace")
        return _tail(redacted)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def cancel(self, turn_id: str) -> None:
        """Kill a running turn's process group (a cancel or the kernel stopping)."""
        with self._lock:
            proc = self._procs.get(turn_id)
            self._cancelled.add(turn_id)
        if proc is not None:
            self._kill(proc)

    def cancel_all(self) -> None:
        with self._lock:
            turns = list(self._procs)
        for turn_id in turns:
            self.cancel(turn_id)
