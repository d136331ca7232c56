"""A task's start (uok.adapters.childproc, issue 15): the direct call of
CPython's fork_exec gives the child exactly what subprocess.Popen gives it
for the same request, and fails exactly as Popen fails. Every test runs on
both paths (FAST and Popen) with real processes."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from uok.adapters import childproc

PY = sys.executable
PATHS = [
    pytest.param(True, id="fork_exec", marks=pytest.mark.skipif(not childproc.FAST, reason="no direct call here")),
    pytest.param(False, id="popen"),
]


@pytest.fixture(params=PATHS)
def fast(request, monkeypatch) -> bool:
    monkeypatch.setattr(childproc, "FAST", request.param)
    return request.param


def _run(args, *, cwd: Path, base: dict[str, str], extra: dict[str, str], shell: bool = False) -> tuple[int, str, str]:
    leader, out_r, err_r = childproc.start(
        args, shell=shell, cwd=str(cwd), env=childproc.Environment(base), extra=extra, stdin=None
    )
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        stdout, stderr = out.read(), err.read()
    return leader.wait(), stdout.decode(), stderr.decode()


PROBE = """
import json, os
print(json.dumps({
    "env": dict(os.environ), "cwd": os.getcwd(), "pid": os.getpid(), "pgid": os.getpgid(0),
    "fds": sorted(int(f) for f in os.listdir("/proc/self/fd")),
    "stdin": os.read(0, 10).decode(),
}))
"""


def test_the_child_gets_its_environment_group_descriptors_and_signals(fast, tmp_path: Path):
    import json
    import signal

    base = {"PATH": os.environ["PATH"], "HOME": "/base-home", "KEEP": "kept", "LANG": "C.UTF-8"}
    extra = {"HOME": "/turn-home", "UOK_RUN_ID": "r1", "UNICODE": "caf\u00e9"}
    assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN  # CPython ignores it in this process
    leak_r, leak_w = os.pipe()
    os.set_inheritable(leak_w, True)  # a descriptor some library left inheritable: the task must not get it
    try:
        code, out, err = _run([PY, "-c", PROBE], cwd=tmp_path, base=base, extra=extra)
    finally:
        os.close(leak_r)
        os.close(leak_w)
    assert (code, err) == (0, "")
    seen = json.loads(out)
    assert seen["env"] == {**base, **extra}
    assert seen["cwd"] == str(tmp_path)
    assert seen["pgid"] == seen["pid"]  # its own process group: a stop reaches its whole tree
    assert seen["fds"] == [0, 1, 2, 3] or seen["fds"] == [0, 1, 2]  # 3: the listing's own descriptor
    # signals restored for the task (this Python ignores SIGPIPE and SIGXFSZ; a Python child would ignore them itself)
    code, out, _ = _run(["cat", "/proc/self/status"], cwd=tmp_path, base=base, extra={})
    sigign = int(next(line for line in out.splitlines() if line.startswith("SigIgn:")).split()[1], 16)
    assert code == 0 and sigign & (1 << (signal.SIGPIPE - 1) | 1 << (signal.SIGXFSZ - 1)) == 0
    assert seen["stdin"] == ""  # /dev/null


def test_a_path_in_the_turns_variables_finds_the_executable_and_a_shell_runs(fast, tmp_path: Path):
    tool = tmp_path / "bin" / "uok-probe-tool"
    tool.parent.mkdir()
    tool.write_text('#!/bin/sh\necho found "$@"\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    base = {"PATH": "/usr/bin:/bin"}
    assert _run(["uok-probe-tool", "a"], cwd=tmp_path, base=base, extra={"PATH": f"/nonexistent:{tool.parent}"})[
        :2
    ] == (0, "found a\n")
    assert _run("echo $X; exit 3", cwd=tmp_path, base=base, extra={"X": "shell"}, shell=True)[:2] == (3, "shell\n")


def _popen_error(args, cwd) -> OSError:
    with pytest.raises(OSError) as info:
        subprocess.Popen(args, cwd=cwd, env={"PATH": "/usr/bin:/bin"}, process_group=0)
    return info.value


@pytest.mark.parametrize("case", ["missing", "not-executable", "bad-cwd", "bad-cwd-missing-too"])
def test_a_task_that_cannot_start_fails_as_popen_fails_and_leaves_nothing_open(fast, tmp_path: Path, case: str):
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\ntrue\n")  # not executable
    args, cwd = {
        "missing": (["uok-no-such-command"], tmp_path),
        "not-executable": ([str(script)], tmp_path),
        "bad-cwd": (["true"], tmp_path / "nope"),
        "bad-cwd-missing-too": (["uok-no-such-command"], tmp_path / "nope"),
    }[case]
    expected = _popen_error(args, str(cwd))
    childproc.devnull()  # the one /dev/null descriptor kept for every task's stdin, opened at first use
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError) as info:
        childproc.start(
            args, shell=False, cwd=str(cwd), env=childproc.Environment({"PATH": "/usr/bin:/bin"}), extra={}, stdin=None
        )
    got = info.value
    assert (type(got), got.errno, got.strerror, got.filename) == (
        type(expected),
        expected.errno,
        expected.strerror,
        expected.filename,
    )
    assert got.errno in (errno.ENOENT, errno.EACCES)
    assert set(os.listdir("/proc/self/fd")) == before


def test_an_illegal_variable_name_is_refused_as_popen_refuses_it(fast, tmp_path: Path):
    with pytest.raises(ValueError, match="illegal environment variable name"):
        childproc.start(
            ["true"], shell=False, cwd=str(tmp_path), env=childproc.Environment({}), extra={"A=B": "x"}, stdin=None
        )


def test_wait_with_a_timeout_and_poll(fast, tmp_path: Path):
    leader, out_r, err_r = childproc.start(
        [
            PY,
            "-c",
            "import sys; sys.stdin.read() if False else None; import time; time.sleep(0.3); raise SystemExit(5)",
        ],
        shell=False,
        cwd=str(tmp_path),
        env=childproc.Environment(dict(os.environ)),
        extra={},
        stdin=None,
    )
    os.close(out_r)
    os.close(err_r)
    assert leader.poll() is None
    with pytest.raises(subprocess.TimeoutExpired):
        leader.wait(0.01)
    assert leader.wait() == 5 and leader.poll() == 5 and leader.returncode == 5
