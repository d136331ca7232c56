"""A -wal that lost committed frames is detected (issue 11).

The newest commits of a log live only in its ``-wal`` until a checkpoint.
Truncate it, or garble one frame (SQLite stops reading at the first frame
whose checksum fails), and those commits are gone while what remains still
verifies as a whole hash chain. Each append records the head it committed
in ``<log>-head`` (uok.adapters.head_anchor); ``uok verify`` must exit 3
naming the lost positions, and must not change the damaged files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, uok
from tests.run_support import task_plan

pytestmark = pytest.mark.reliability

LATE = 3
WAL_HEADER, FRAME_HEADER = 32, 24
LEAVE_WAL = f"""
import os, sys
from datetime import UTC, datetime
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
log = EventLog(SqliteEventStore(sys.argv[1]))
for i in range({LATE}):
    log.append([ev.SteeringReceived(run_id="r-late", at=datetime.now(UTC), message_id=f"m{{i}}", command="note",
                                    argument="x" * 3000)])  # a page or more per commit
os._exit(0)  # the commits stay in the -wal only
"""


@pytest.fixture(scope="module")
def wal_log(tmp_path_factory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("wal")
    plan = task_plan(root / "plan.toml", [("a", "pass"), ("b", "pass")], plan_id="w")
    db = root / "log" / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", LEAVE_WAL, str(db)], env=env, check=True)
    r = uok("verify", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    head = int(re.search(r'"events":(\d+)', r.stdout).group(1))  # type: ignore[union-attr]
    return db, head


def copy_of(src: Path, into: Path) -> Path:
    shutil.copytree(src.parent, into)
    return into / src.name


def page_size(db: Path) -> int:
    size = int.from_bytes(db.read_bytes()[16:18], "big")
    return 65536 if size == 1 else size


def digests(db: Path) -> list[str | None]:
    return [
        hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else None
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-head"))
    ]


def test_an_intact_wal_verifies(wal_log, tmp_path: Path):
    db = copy_of(wal_log[0], tmp_path / "log")
    r = uok("verify", "--db", str(db))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("how", ["truncated after its first frame", "truncated to its header", "a frame garbled"])
def test_a_wal_that_lost_committed_frames_fails_verify_naming_the_positions(wal_log, tmp_path: Path, how: str):
    src, head = wal_log
    db = copy_of(src, tmp_path / "log")
    wal = Path(f"{db}-wal")
    frame = FRAME_HEADER + page_size(db)
    data = bytearray(wal.read_bytes())
    assert len(data) >= WAL_HEADER + LATE * frame
    if how == "truncated after its first frame":
        wal.write_bytes(bytes(data[: WAL_HEADER + frame]))
    elif how == "truncated to its header":
        wal.write_bytes(bytes(data[:WAL_HEADER]))
    else:
        at = WAL_HEADER + frame + FRAME_HEADER + 100  # inside the second frame's page
        data[at] ^= 0xFF
        wal.write_bytes(bytes(data))
    Path(f"{db}-shm").unlink()  # as a copy without its index would be: SQLite rebuilds it from the -wal
    before = digests(db)
    r = uok("verify", "--db", str(db))
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    m = re.search(r"records position (\d+) as committed, but the log ends at (\d+); positions? (\d+)", r.stderr)
    assert m, r.stderr
    assert int(m.group(1)) == head and int(m.group(2)) < head and int(m.group(3)) == int(m.group(2)) + 1
    assert r.stderr.count("uok:") == 1 and "Traceback" not in r.stderr
    assert digests(db) == before, "verify changed the damaged log"


def test_a_checkpointed_log_without_its_wal_verifies(wal_log, tmp_path: Path):
    """Nothing is lost when the frames were copied into the file first."""
    db = copy_of(wal_log[0], tmp_path / "log")
    import apsw

    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0
    r = uok("verify", "--db", str(db))
    assert r.returncode == 0, r.stderr


def test_a_new_log_does_not_inherit_the_anchor_of_a_deleted_one(wal_log, tmp_path: Path):
    db = copy_of(wal_log[0], tmp_path / "log")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    assert Path(f"{db}-head").exists()
    plan = task_plan(tmp_path / "plan.toml", [("a", "pass")], plan_id="fresh")
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    r = uok("verify", "--db", str(db))
    assert r.returncode == 0, r.stderr
