"""The ``verification`` gate: run a command, judge by its exit status.

The command comes from the task's inline gate table
(``{ id = "verification", command = [...], timeout = 60 }``) or from the
``[uok.gate.verification]`` config defaults; the host merges the two into
the ``GateContext``. It runs like a task does: argv without a shell (unless
``shell = true``), cwd = the task's cwd under the plan root, in its own
process group (a timeout kills the whole tree); what a ``kill -9`` of the
kernel leaves running is ended by the next start (``uok.adapters.orphans``,
by the ``UOK_RUN_ID`` in its environment).

* exit 0 → ``pass``;
* any other exit → ``fail``, failure class ``verification`` (1 retry);
* timeout → ``fail``, failure class ``timeout`` (2 retries);
* no command configured → ``manual-attention``, class ``input``: a gate
  that cannot check anything must not pass silently.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from uok.domain.policies.gates import GateContext, GateResult

DEFAULT_TIMEOUT = 300.0
TAIL_CHARS = 600


REDACT_BYTES = 256 * 1024  # the end of the output that is redacted before its tail is cut


def _tail(data: bytes) -> str:
    """The output's last characters, redacted *before* they are cut: a cut
    private key or token no longer looks like one (the host redacts again)."""
    from uok.adapters.secrets import redact

    text = redact(data[-REDACT_BYTES:].decode("utf-8", errors="replace")).strip()
    return text[-TAIL_CHARS:]


class VerificationGate:
    def __init__(self, gate_id: str = "verification", *, default_timeout: float = DEFAULT_TIMEOUT):
        self.id = gate_id
        self.type = "verification"
        self.default_timeout = default_timeout
        self._procs: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        if not context.command:
            return GateResult(
                outcome="manual-attention",
                failure_class="input",
                rationale=(
                    f"no command configured for gate {context.gate_id}: list it as an inline table "
                    f'{{ id = "{context.gate_id}", command = [...] }} or set [uok.gate.{context.gate_id}] command'
                ),
            )
        timeout = context.timeout or self.default_timeout
        root = Path(context.base_path)
        cwd = root / context.cwd if context.cwd else root
        env = {
            **os.environ,
            **context.env,
            "UOK_RUN_ID": context.run_id,
            "UOK_TURN_ID": context.turn_id,
            "UOK_UNIT_ID": context.unit_id,
            "UOK_GATE_ID": context.gate_id,
            "UOK_ATTEMPT": str(attempt),
        }
        args = context.command[0] if context.shell else list(context.command)
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                args,
                shell=context.shell,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,  # its own group, the fast spawn path (uok.adapters.orphans ends leftovers)
            )
        except OSError as exc:
            return GateResult(
                outcome="fail",
                failure_class="verification",
                rationale=f"cannot start {context.command[0]!r}: {exc.strerror or exc}",
            )
        with self._lock:
            self._procs[proc.pid] = proc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(proc)
            out, err = proc.communicate()
            return GateResult(
                outcome="fail",
                failure_class="timeout",
                rationale=f"timed out after {timeout:g} s; killed" + _detail(out, err),
            )
        finally:
            with self._lock:
                self._procs.pop(proc.pid, None)
        ms = int((time.monotonic() - started) * 1000)
        if proc.returncode == 0:
            return GateResult(outcome="pass", rationale=f"exit code 0 in {ms} ms")
        return GateResult(
            outcome="fail", failure_class="verification", rationale=f"exit code {proc.returncode}" + _detail(out, err)
        )

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def cancel_all(self) -> None:
        """Kill every command still running (the kernel is stopping)."""
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            self._kill(proc)


def _detail(out: bytes, err: bytes) -> str:
    tail = _tail(err) or _tail(out)
    return f": {tail}" if tail else ""
