"""Starting a task's process with as little work per task as the contract allows (issue 15).

:func:`start` starts the task in its own process group (``process_group=0``:
a ``vfork`` and an ``exec``, no ``preexec_fn``), every descriptor above 2
closed in the child (``close_fds``), its signals restored, in its ``cwd``,
with its environment: the run's base environment (:class:`Environment`)
and the turn's own variables. Its stdout and stderr are two pipes made here
with ``os.pipe`` (close-on-exec in this process; the child gets them as 1
and 2), whose read ends are handed back as bare descriptors (the pump reads
them with ``poll(2)``: no file objects per task); stdin is a file (an
agent's prompt) or one ``/dev/null`` descriptor kept for the process's life.

On CPython 3.11 to 3.13 the start calls ``_posixsubprocess.fork_exec``
itself, with the arguments ``subprocess.Popen`` passes it for the same
request (:data:`FAST`): ``Popen``'s own Python around that call (encoding
every variable of the environment, resolving the executable over ``PATH``,
its handles and bookkeeping) was about half the CPU of a short task's start
(~0.2 ms of a ~0.4 ms turn). Here the base environment is encoded once per
executor (:class:`Environment`, remade when the executor's base environment
is set again), a turn encodes only its ~12 own variables, and the ``PATH``
candidates of an executable are kept per ``PATH`` value and name. What
``Popen`` does after the call is done the same way: the child's exec error
read from the error pipe and raised as the ``OSError`` ``Popen`` raises (the
child reaped), and :class:`Leader` waits for the child as ``Popen`` does
(``waitpid`` under a lock; ``ECHILD`` read as exit 0). Elsewhere (another
CPython, or :data:`FAST` set to False) the same request goes through
``subprocess.Popen``. One difference: the fast path raises no
``subprocess.Popen`` audit event (``sys.audit``); nothing in uok listens.
"""

from __future__ import annotations

import builtins
import functools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

__all__ = ["FAST", "Environment", "Leader", "start"]

try:
    import _posixsubprocess

    _FORK_EXEC = _posixsubprocess.fork_exec if (3, 11) <= sys.version_info[:2] <= (3, 13) else None
except (ImportError, AttributeError):  # pragma: no cover - not CPython on a POSIX system
    _FORK_EXEC = None

FAST = _FORK_EXEC is not None  # the direct call (the 23-argument fork_exec of 3.11-3.13, typeshed's too); False: Popen
_SHELL = "/system/bin/sh" if hasattr(sys, "getandroidapilevel") else "/bin/sh"  # Popen's unix_shell

_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()  # os.fsencode's
_DEVNULL: list[int] = []  # the /dev/null descriptor every task's stdin is, made once
_DEVNULL_LOCK = threading.Lock()


class Leader(Protocol):
    """What the executor, the pump and :class:`~uok.adapters.taskprocess.TaskProcess`
    ask of a task's leader process: a ``subprocess.Popen`` has it."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def devnull() -> int:
    """A read-only ``/dev/null`` descriptor (close-on-exec), opened once per process."""
    if not _DEVNULL:
        with _DEVNULL_LOCK:
            if not _DEVNULL:
                _DEVNULL.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
    return _DEVNULL[0]


def _entry(key: str, value: str) -> bytes:
    k = os.fsencode(key)
    if b"=" in k:
        raise ValueError("illegal environment variable name")  # Popen's error
    return k + b"=" + os.fsencode(value)


class Environment:
    """A base environment (read-only) and its entries encoded once, as
    ``execve`` takes them; a turn adds its own variables (:meth:`entries`)."""

    def __init__(self, env: Mapping[str, str]):
        self.mapping: Mapping[str, str] = MappingProxyType(dict(env))
        self._encoded: dict[str, bytes] | None = None  # at the first start: a bad name fails a start, as in Popen
        self._all: list[bytes] = []

    def entries(self, extra: Mapping[str, str]) -> list[bytes]:
        """The child's environment: the base, less what ``extra`` sets, and ``extra``."""
        encoded = self._encoded
        if encoded is None:
            encoded = {k: _entry(k, v) for k, v in self.mapping.items()}
            self._all = list(encoded.values())
            self._encoded = encoded
        if encoded.keys().isdisjoint(extra):
            base = self._all.copy()
        else:
            base = [e for k, e in encoded.items() if k not in extra]
        for k, v in extra.items():
            if type(k) is str and type(v) is str and "=" not in k:  # os.fsencode's encoding, one call
                base.append(f"{k}={v}".encode(_FS_ENCODING, _FS_ERRORS))
            else:
                base.append(_entry(k, v))  # bytes, a path, or an error to raise as Popen does
        return base

    def merged(self, extra: Mapping[str, str]) -> dict[str, str]:
        return {**self.mapping, **extra}

    def path(self, extra: Mapping[str, str]) -> str | None:
        return extra["PATH"] if "PATH" in extra else self.mapping.get("PATH")


@functools.lru_cache(maxsize=256)
def _candidates(executable: bytes, path: str | None) -> tuple[bytes, ...]:
    """Where the child tries to exec ``executable``, as ``Popen`` lists them
    (no file system access: the child's ``execve`` looks)."""
    if os.path.dirname(executable):
        return (executable,)
    env = {} if path is None else {"PATH": path}
    return tuple(os.path.join(os.fsencode(d), executable) for d in os.get_exec_path(env))


class _Child:
    """A child started by the direct call: ``Popen``'s ``poll`` and ``wait`` for it."""

    def __init__(self, pid: int, args: list[str]):
        self.pid, self.args = pid, args
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def _reaped(self, flags: int) -> bool:  # under the lock
        try:
            pid, status = os.waitpid(self.pid, flags)
        except ChildProcessError:  # SIGCHLD ignored, or reaped elsewhere: dead, status unknown (as Popen)
            self.returncode = 0
            return True
        if pid != self.pid:
            return False
        self.returncode = os.waitstatus_to_exitcode(status)
        return True

    def poll(self) -> int | None:
        if self.returncode is None and self._lock.acquire(False):
            try:
                if self.returncode is None:
                    self._reaped(os.WNOHANG)
            finally:
                self._lock.release()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                with self._lock:
                    if self.returncode is None:
                        self._reaped(0)
            return self.returncode  # set by _reaped
        end, delay = time.monotonic() + timeout, 0.0005
        while self.returncode is None:
            if self.poll() is not None:
                break
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            delay = min(delay * 2, remaining, 0.05)
            time.sleep(delay)
        return self.returncode  # type: ignore[return-value]  # set by poll


def start(
    args: str | Sequence[str],
    *,
    shell: bool,
    cwd: str,
    env: Environment,
    extra: Mapping[str, str],
    stdin: str | None,
) -> tuple[Leader, int, int]:
    """Start the task: its leader and the read ends of its stdout and stderr
    pipes (the caller's to read and close). ``env`` and ``extra``: the base
    environment and the turn's variables over it. ``OSError`` when it cannot
    start (no such executable, a bad ``cwd``): nothing is left open."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    stdin_fd = -1
    try:
        stdin_fd = os.open(stdin, os.O_RDONLY | os.O_CLOEXEC) if stdin is not None else -1
        p2cread = stdin_fd if stdin_fd >= 0 else devnull()
        leader: Leader
        if FAST:
            leader = _fork_exec(args, shell, cwd, env.entries(extra), env.path(extra), p2cread, out_w, err_w)
        else:
            leader = subprocess.Popen(
                args,
                shell=shell,
                cwd=cwd,
                env=env.merged(extra),
                stdin=p2cread,
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
    return leader, out_r, err_r


def _fork_exec(
    args: str | Sequence[str],
    shell: bool,
    cwd: str,
    env_list: list[bytes],
    path: str | None,
    p2cread: int,
    c2pwrite: int,
    errwrite: int,
) -> _Child:
    """What ``Popen._execute_child`` does for this request (CPython 3.11-3.13)."""
    assert _FORK_EXEC is not None
    argv = [args] if isinstance(args, str) else list(args)
    if shell:
        argv = [_SHELL, "-c", *argv]
    executable = argv[0]
    errpipe_read, errpipe_write = os.pipe()
    low: list[int] = []
    while errpipe_write < 3:  # 0-2 closed in this process: the child's dup2s must not hit it
        low.append(errpipe_write)
        errpipe_write = os.dup(errpipe_write)
    for fd in low:
        os.close(fd)
    try:
        try:
            pid = _FORK_EXEC(
                argv,
                _candidates(os.fsencode(executable), path),
                True,  # close_fds
                (errpipe_write,),
                cwd,
                env_list,
                p2cread,
                -1,
                -1,
                c2pwrite,
                -1,
                errwrite,
                errpipe_read,
                errpipe_write,
                True,  # restore_signals
                False,  # start_new_session
                0,  # process_group: its own
                None,  # gid
                None,  # extra groups
                None,  # uid
                -1,  # umask
                None,  # type: ignore[arg-type]  # preexec_fn: none (typeshed types it without None)
                getattr(subprocess, "_USE_VFORK", True),
            )
        finally:
            os.close(errpipe_write)
        data = bytearray()
        while True:  # the exec's failure, if it failed (the pipe closes at a successful exec)
            part = os.read(errpipe_read, 50000)
            data += part
            if not part or len(data) > 50000:
                break
    finally:
        os.close(errpipe_read)
    child = _Child(pid, argv)
    if data:
        child.wait()
        _raise_child_error(bytes(data), cwd, executable)
    return child


def _raise_child_error(data: bytes, cwd: str, executable: str) -> None:
    """Raise what ``Popen`` raises for the child's report on the error pipe."""
    try:
        name, hex_errno, err = data.split(b":", 2)
        message = err.decode()
    except ValueError:
        name, hex_errno, message = b"SubprocessError", b"0", f"Bad exception data from child: {data!r}"
    kind = getattr(builtins, name.decode("ascii"), subprocess.SubprocessError)
    if issubclass(kind, OSError) and hex_errno:
        number = int(hex_errno, 16)
        never_exec = message == "noexec"  # the chdir failed
        filename = cwd if never_exec else executable
        message = os.strerror(number) if number != 0 else ("" if never_exec else message)
        raise kind(number, message, filename)
    raise kind(message)
