"""Read-only means read-only (issue 11).

Every reading command opens the log read-only: it never checkpoints,
truncates or deletes the ``-wal`` (a read-write connection that closes last
checkpoints the WAL into the file and deletes it, taking with it any frame
it could not read), and never writes its read models back. Checked by hash
of the ``.db`` and the ``-wal`` before and after each command, on a log
whose last events are still only in its ``-wal``, intact and damaged.

Read-only storage: the tests run as root, for whom ``chmod`` stops nothing,
so the directory and the files are made immutable with ``chattr +i`` (which
stops root too: SQLite cannot create a ``-shm`` there, nor write anything).
Skipped where ``chattr +i`` is refused (not root, a file system without
the flag).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import ROOT, uok
from tests.reliability.support import run_cli
from tests.run_support import task_plan

pytestmark = pytest.mark.reliability

WAL_EVENTS = 3
LEAVE_WAL = f"""
import os, sys
from datetime import UTC, datetime
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
log = EventLog(SqliteEventStore(sys.argv[1]))
for _ in range({WAL_EVENTS}):
    log.append([ev.SteeringReceived(run_id="r-late", at=datetime.now(UTC), message_id=os.urandom(4).hex(),
                                    command="note", argument="late")])
os._exit(0)  # no close: the last commits stay in the -wal, as after a crash or while a run is live
"""


def read_commands(run_id: str, out: Path) -> list[list[str]]:
    return [
        ["status"],
        ["events"],
        ["events", "--json"],
        ["verify"],
        ["export", "--out", str(out / "audit.jsonl")],
        ["sql", "SELECT count(*) FROM events", "--copy", str(out / "copy.duckdb")],
        ["state", "--at", "5"],
        ["state"],
        ["diff", "1", "5"],
        ["metrics"],
        ["parity"],
        ["breakers"],
        ["replay", "--all"],
        ["report", run_id, "--html", str(out / "report.html")],
        ["trace", run_id, "--out", str(out / "trace.json")],
        ["doctor"],
        ["projections", "status"],
        ["bus", "inbox", "someone"],
        ["bus", "stats"],
        ["writer"],
    ]


@pytest.fixture(scope="module")
def wal_log(tmp_path_factory) -> tuple[Path, str]:
    """A log whose run checkpointed, then 3 events committed to its -wal only."""
    root = tmp_path_factory.mktemp("walllog")
    plan = task_plan(root / "plan.toml", [(f"t{i}", "pass") for i in range(3)], plan_id="ro")
    db = root / "log" / "events.db"
    r = uok("run", str(plan), "--db", str(db), "--quiet")
    assert r.returncode == 0, r.stderr
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0  # a finished run checkpointed
    run_id = uok("events", "--db", str(db), "--json").stdout.split('"run_id":"')[1].split('"')[0]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", LEAVE_WAL, str(db)], env=env, check=True)
    assert Path(f"{db}-wal").stat().st_size > 0
    return db, run_id


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def log_bytes(db: Path) -> tuple[str | None, str | None]:
    return digest(db), digest(Path(f"{db}-wal"))


def fresh_copy(src: Path, into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(src.parent, into)
    return into / src.name


def damage_payload(db: Path) -> None:
    """One byte of a stored payload changed in the main file (the chain breaks there)."""
    data = bytearray(db.read_bytes())
    at = data.find(b'"plan_source"')
    assert at > 0
    data[at + 1] = ord("P")
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("damaged", [False, True], ids=["intact", "damaged"])
def test_no_reading_command_changes_a_byte_of_the_log_or_its_wal(wal_log, tmp_path: Path, damaged: bool):
    src, run_id = wal_log
    failures = []
    for argv in read_commands(run_id, tmp_path):
        db = fresh_copy(src, tmp_path / "log")
        if damaged:
            damage_payload(db)
        before = log_bytes(db)
        code, _, err = run_cli([*argv, "--db", str(db)])  # in-process: a traceback fails the test
        assert "internal error" not in err, (argv, err)
        if not damaged and code != 0:
            failures.append(f"uok {' '.join(argv)}: exit {code}: {err.strip()[:200]}")
        if log_bytes(db) != before:
            failures.append(f"uok {' '.join(argv)} changed the log: {before} -> {log_bytes(db)}")
    assert not failures, "\n".join(failures)


def test_a_reading_command_sees_the_events_in_the_wal(wal_log, tmp_path: Path):
    src, _ = wal_log
    db = fresh_copy(src, tmp_path / "log")
    late = [line for line in uok("events", "--db", str(db), "--json").stdout.splitlines() if "r-late" in line]
    assert len(late) == WAL_EVENTS


@contextmanager
def immutable(directory: Path) -> Iterator[None]:
    """``directory`` and every file in it immutable (root cannot write them either)."""
    paths = [*directory.iterdir(), directory]
    done = []
    try:
        for p in paths:
            r = subprocess.run(["chattr", "+i", str(p)], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"chattr +i refused here: {r.stderr.strip()}")
            done.append(p)
        yield
    finally:
        for p in reversed(done):
            subprocess.run(["chattr", "-i", str(p)], check=False)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
@pytest.mark.parametrize("layout", ["checkpointed", "with -wal and -shm"])
def test_every_reading_command_works_on_read_only_storage(wal_log, tmp_path: Path, layout: str, monkeypatch):
    src, run_id = wal_log
    db = fresh_copy(src, tmp_path / "log")
    if layout == "checkpointed":
        assert uok("run", str(src.parent.parent / "plan.toml"), "--db", str(db), "--quiet").returncode == 0
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    out = tmp_path / "out"
    out.mkdir()
    failures = []
    with immutable(db.parent):
        probe = subprocess.run(["touch", str(db.parent / "probe")], capture_output=True)
        assert probe.returncode != 0, "the directory is still writable: the test would prove nothing"
        before = log_bytes(db)
        monkeypatch.setenv("XDG_CACHE_HOME", str(out / "cache"))
        for argv in read_commands(run_id, out):
            if argv[0] == "sql":
                argv = argv[:2]  # the default copy: beside the log is not writable, so the user's cache
            code, _, err = run_cli([*argv, "--db", str(db)])
            if code != 0:
                failures.append(f"uok {' '.join(argv)}: exit {code}: {err.strip()[:200]}")
        late = [line for line in uok("events", "--db", str(db), "--json").stdout.splitlines() if "r-late" in line]
        assert len(late) == WAL_EVENTS
        assert log_bytes(db) == before
    assert not failures, "\n".join(failures)


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
def test_a_wal_that_cannot_be_read_on_read_only_storage_is_refused_not_skipped(wal_log, tmp_path: Path):
    """A -wal without its -shm on read-only storage: SQLite cannot read it,
    and opening the file immutable would silently drop its events."""
    src, _ = wal_log
    db = fresh_copy(src, tmp_path / "log")
    Path(f"{db}-shm").unlink()
    with immutable(db.parent):
        r = uok("events", "--db", str(db))
    assert r.returncode == 1, r.stdout[-300:]
    assert "-wal holds events not yet in the file" in r.stderr and r.stderr.count("uok:") == 1


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr")
def test_a_writing_command_on_read_only_storage_says_so(wal_log, tmp_path: Path):
    src, _ = wal_log
    db = fresh_copy(src, tmp_path / "log")
    plan = src.parent.parent / "plan.toml"
    with immutable(db.parent):
        before = log_bytes(db)
        code, _, err = run_cli(["run", str(plan), "--quiet", "--db", str(db)])
        assert log_bytes(db) == before
    assert code == 2 and "read-only" in err and err.count("uok:") == 1, err
