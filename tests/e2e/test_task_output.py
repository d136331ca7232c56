"""A task's output is kept: streamed to files beside the log, redacted as it
is written, its size and SHA-256 in the turn's ExecutionFinished, shown by
`uok logs` (real `uok run` subprocesses, real logs on apsw and PostgreSQL)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

from tests.conftest import ROOT, json_lines, uok
from tests.run_support import task_plan

AWS = "AKIA" + "ABCDEFGHIJKLMNOP"  # split so no scanner flags this file
NOISY = f"""
import sys
for i in range(3000):
    print(f"line {{i}} of the task's own output")
    if i == 1500:
        print("the key is {AWS}")
    if i % 1000 == 0:
        print(f"warning {{i}}", file=sys.stderr)
"""


def _finished(db) -> list[dict]:
    r = uok("events", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return [row["event"] for row in json_lines(r.stdout) if row["event"]["type"] == "ExecutionFinished"]


def _file(db, plan: Path, recorded: str) -> Path:
    path = Path(recorded)
    if path.is_absolute():
        return path
    return Path(db).parent / path


def test_output_is_kept_whole_redacted_and_hashed(tmp_path: Path, logs):
    plan = task_plan(tmp_path / "plan.toml", [("noisy", NOISY)])
    db = logs.new()
    r = uok("run", str(plan), "--db", str(db), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [fin] = _finished(db)
    out = _file(db, plan, fin["stdout_log"]["path"]).read_bytes()
    err = _file(db, plan, fin["stderr_log"]["path"]).read_bytes()
    # every line is there, in order, and the key is not
    lines = out.decode().splitlines()
    assert len(lines) == 3001 and lines[0] == "line 0 of the task's own output" and lines[-1].startswith("line 2999")
    assert AWS not in out.decode() and "[REDACTED:AWS Access Key:" in lines[1501]
    assert err.decode().splitlines() == ["warning 0", "warning 1000", "warning 2000"]
    # the event vouches for exactly these bytes
    assert fin["stdout_log"]["size"] == len(out) and fin["stdout_log"]["sha256"] == hashlib.sha256(out).hexdigest()
    assert fin["stderr_log"]["size"] == len(err) and fin["stderr_log"]["sha256"] == hashlib.sha256(err).hexdigest()
    assert out.decode().endswith(fin["stdout_tail"]) and len(fin["stdout_tail"].encode()) == 4096
    if logs.is_postgres:  # beside the plan, recorded absolute
        assert Path(fin["stdout_log"]["path"]).is_relative_to(tmp_path / ".uok" / "logs")
    else:  # beside the log file, recorded relative to its directory
        assert fin["stdout_log"]["path"].startswith("logs/")

    # uok logs shows the whole output, from anywhere
    shown = uok("logs", "noisy", "--db", str(db), cwd=tmp_path.parent)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.encode() == out
    assert uok("logs", "noisy", "--stderr", "--db", str(db)).stdout.encode() == err
    meta = json_lines(uok("logs", "noisy", "--json", "--db", str(db)).stdout)
    assert [m["sha256"] for m in meta] == [fin["stdout_log"]["sha256"]] and meta[0]["finished"] is True
    # a run id shows every turn of the run, each line prefixed with its unit
    by_run = uok("logs", fin["run_id"], "--db", str(db)).stdout.splitlines()
    assert by_run[0] == "noisy#1 | line 0 of the task's own output" and len(by_run) == 3001


def test_a_changed_output_file_is_an_integrity_failure(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("t", "print('hello world')")])
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    [fin] = _finished(db)
    path = _file(db, plan, fin["stdout_log"]["path"])
    path.write_bytes(b"hello WORLD\n")  # same size, other bytes
    r = uok("logs", "t", "--db", str(db))
    assert r.returncode == 3 and "SHA-256" in r.stderr and "Traceback" not in r.stderr


def test_a_stream_the_task_never_wrote_to_leaves_no_file_and_shows_empty(tmp_path: Path):
    """A silent stream (most tasks' stderr) is recorded as 0 bytes and gets
    no file (issue 15: a new file's inode is most of its cost); `uok logs`
    shows it empty and whole. A missing file of a stream that had bytes is
    still an integrity failure."""
    plan = task_plan(tmp_path / "plan.toml", [("t", "print('only stdout')")])
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    [fin] = _finished(db)
    empty = hashlib.sha256(b"").hexdigest()
    assert (fin["stderr_log"]["size"], fin["stderr_log"]["sha256"], fin["stderr_tail"]) == (0, empty, "")
    assert not _file(db, plan, fin["stderr_log"]["path"]).exists()
    r = uok("logs", "t", "--stderr", "--db", str(db))
    assert (r.returncode, r.stdout) == (0, ""), r.stderr
    out = _file(db, plan, fin["stdout_log"]["path"])
    assert out.read_bytes() == b"only stdout\n"
    out.unlink()
    r = uok("logs", "t", "--db", str(db))
    assert r.returncode == 3 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_invalid_utf8_and_an_endless_line_are_kept_as_text(tmp_path: Path):
    src = "import sys; sys.stdout.buffer.write(b'caf\\xc3\\xa9 \\xff ' + b'x' * 600000); sys.stdout.flush()"
    plan = task_plan(tmp_path / "plan.toml", [("t", src)])
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    [fin] = _finished(db)
    data = _file(db, plan, fin["stdout_log"]["path"]).read_bytes()
    assert data.startswith("café \ufffd ".encode()) and data.count(b"x") == 600000
    assert fin["stdout_log"]["size"] == len(data)


def test_logs_follow_prints_a_running_task_until_it_ends(tmp_path: Path):
    from tests.run_support import run_id_of, start_run, wait_for

    gate = tmp_path / "go"
    src = (
        "import os, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(gate)!r}): time.sleep(0.05)\n"
        "print('second', flush=True)\n"
    )
    plan = task_plan(tmp_path / "plan.toml", [("slow", src)], extra="timeout = 120\n")
    db = tmp_path / "x.db"
    proc = start_run(plan, db)
    run_id_of(db)
    logs_dir = tmp_path / "logs"
    wait_for(lambda: any(p.read_text() for p in logs_dir.glob("*/slow.*.stdout")), what="the task's first line")
    import subprocess

    from tests.conftest import ROOT

    follower = subprocess.Popen(
        [sys.executable, "-m", "uok", "logs", "slow", "--follow", "--db", str(db)],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert follower.stdout.readline() == b"first\n"  # printed while the task still runs
    gate.touch()
    rest, err = follower.communicate(timeout=60)
    assert follower.returncode == 0, err
    assert rest == b"second\n"
    assert proc.wait(timeout=60) == 0


def test_unknown_selector_and_bad_attempt_exit_2(tmp_path: Path):
    plan = task_plan(tmp_path / "plan.toml", [("t", "print(1)")])
    db = tmp_path / "x.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    r = uok("logs", "nope", "--db", str(db))
    assert r.returncode == 2 and "no run, turn or unit 'nope'" in r.stderr
    assert uok("logs", "t", "--attempt", "0", "--db", str(db)).returncode == 2
    r = uok("logs", "t", "--attempt", "2", "--db", str(db))
    assert r.returncode == 2 and "no attempt 2" in r.stderr
    assert orjson.loads(uok("logs", "t", "--attempt", "1", "--json", "--db", str(db)).stdout)["attempt"] == 1


def test_a_large_output_keeps_the_runners_memory_bounded(tmp_path: Path):
    """40 MB of output: the whole of it is in the file, hashed, and the
    runner's peak RSS stays under 100 MB (it held every byte before output
    was streamed: 300 MB took it to 640 MB). The peak is the kernel's
    high-water mark of `uok run`'s own memory (VmHWM), read until it exits:
    not ``wait4``'s ru_maxrss, which also counts the pytest process the
    child was forked from."""
    size = 40_000_000
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[plan]\nid = "big"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        f'[[milestones.slices.tasks]]\nid = "loud"\nshell = true\ncommand = "yes \'one line of plain task output\' | head -c {size}"\n'
    )
    db = tmp_path / "big.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("UOK_DB", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:  # it ended between poll() and the read
            break
        hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
        peak_kb = max(peak_kb, int(hwm))
        time.sleep(0.05)
    peak_mb = peak_kb / 1024
    assert proc.wait() == 0
    assert peak_kb > 0, "the runner's memory was never read"
    print(f"\npeak RSS of uok run: {peak_mb:.0f} MB for {size / 1e6:.0f} MB of output")
    assert peak_mb < 100, f"peak RSS {peak_mb:.0f} MB for {size / 1e6:.0f} MB of output"
    (fin,) = _finished(db)
    out = _file(db, plan, fin["stdout_log"]["path"])
    assert fin["stdout_log"]["size"] == out.stat().st_size == size
    digest = hashlib.sha256()
    with out.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    assert fin["stdout_log"]["sha256"] == digest.hexdigest()
