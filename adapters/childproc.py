"""Starting a task's process with as little work per task as the contract allows (issue 15).

:func:`start` is the executor's one call to ``subprocess.Popen``: the task
in its own process group (``process_group=0``: CPython's ``vfork`` path,
no ``preexec_fn``), its stdout and stderr two pipes made here with
``os.pipe`` (close-on-exec in this process; the child gets them as 1 and 2),
whose read ends are handed back as bare descriptors (the pump reads them
with ``poll(2)``: no file objects to make per task), and stdin either a
file (an agent's prompt) or one ``/dev/null`` descriptor kept for the
process's life instead of an ``open`` and ``close`` per task.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence

__all__ = ["start"]

_DEVNULL: list[int] = []  # the /dev/null descriptor every task's stdin is, made once
_DEVNULL_LOCK = threading.Lock()


def devnull() -> int:
    """A read-only ``/dev/null`` descriptor (close-on-exec), opened once per process."""
    if not _DEVNULL:
        with _DEVNULL_LOCK:
            if not _DEVNULL:
                _DEVNULL.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _DEVNULL[0]


def start(
    args: str | Sequence[str], *, shell: bool, cwd: str, env: Mapping[str, str], stdin: str | None
) -> tuple[subprocess.Popen, int, int]:
    """Start the task: its ``Popen`` and the read ends of its stdout and
    stderr pipes (the caller's to read and close). ``OSError`` when it
    cannot start (no such executable, a bad ``cwd``): nothing is left open."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin_fd = -1
    try:
        stdin_fd = os.open(stdin, os.O_RDONLY | os.O_CLOEXEC) if stdin is not None else -1
        proc = subprocess.Popen(
            args,
            shell=shell,
            cwd=cwd,
            env=env,
            stdin=stdin_fd if stdin_fd >= 0 else devnull(),
            stdout=out_w,
            stderr=err_w,
            process_group=0,  # its own group, the fast spawn path (no preexec_fn)
        )
    except BaseException:
        os.close(out_r)
        os.close(err_r)
        raise
    finally:
        os.close(out_w)  # the child has its own copies: EOF comes when the task's tree has closed them
        os.close(err_w)
        if stdin_fd >= 0:
            os.close(stdin_fd)  # likewise
    return proc, out_r, err_r
