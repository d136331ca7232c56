"""``uok sql`` is safe with other people's data and with runaway queries (issue 11).

Real DuckDB files, real subprocesses, a real SIGINT:

* a ``--copy`` that is a DuckDB database uok did not create (or not a
  DuckDB file at all) is refused, exit 2, byte-identical;
* a query past ``--timeout`` is stopped, exit 2; past ``--memory-limit``
  it fails, exit 2; a query nested too deeply is refused, exit 2;
* Ctrl-C stops a running query within a second: exit 130, one line;
* a long query holding the copy does not queue the next ``uok sql``
  behind its lock: that one answers from the copy as it stands.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, uok
from tests.run_support import task_plan

pytestmark = pytest.mark.reliability

SLOW = "SELECT count(*) FROM events a, events b, events c, events d, events e"  # ~10^11 rows: minutes


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sql")
    plan = task_plan(root / "plan.toml", [(f"t{i}", "pass") for i in range(12)], plan_id="sql")
    db = root / "events.db"
    assert uok("run", str(plan), "--db", str(db), "--quiet").returncode == 0
    assert uok("sql", "SELECT 1", "--db", str(db)).returncode == 0  # the copy exists: later tests time the query
    return db


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_foreign_duckdb_file_is_refused_and_left_byte_identical(log, tmp_path: Path):
    theirs = tmp_path / "theirs.duckdb"
    con = duckdb.connect(str(theirs))
    con.execute("CREATE TABLE sales AS SELECT range AS id FROM range(1000)")
    con.execute("CREATE VIEW big AS SELECT * FROM sales WHERE id > 500")
    con.close()
    before = sha(theirs)
    r = uok("sql", "SELECT count(*) FROM events", "--copy", str(theirs), "--db", str(log))
    assert r.returncode == 2, r.stderr
    assert "did not create" in r.stderr and r.stderr.count("uok:") == 1
    assert sha(theirs) == before
    con = duckdb.connect(str(theirs), read_only=True)
    assert con.execute("SELECT count(*) FROM sales").fetchall() == [(1000,)]
    con.close()


def test_a_file_that_is_not_duckdb_is_refused_and_left_alone(log, tmp_path: Path):
    notes = tmp_path / "notes.duckdb"
    notes.write_text("my notes\n" * 1000)
    r = uok("sql", "SELECT 1", "--copy", str(notes), "--db", str(log))
    assert r.returncode == 2 and "internal error" not in r.stderr, r.stderr
    assert notes.read_text() == "my notes\n" * 1000


def test_a_copy_uok_made_is_still_refreshed(log, tmp_path: Path):
    copy = tmp_path / "mine.duckdb"
    assert uok("sql", "SELECT 1", "--copy", str(copy), "--db", str(log)).returncode == 0
    r = uok("sql", "SELECT count(*) AS n FROM events", "--copy", str(copy), "--db", str(log), "--json")
    assert r.returncode == 0 and '"n":' in r.stdout, r.stderr


def test_a_query_past_its_time_limit_is_stopped_with_exit_2(log):
    started = time.monotonic()
    r = uok("sql", SLOW, "--timeout", "1", "--db", str(log))
    assert r.returncode == 2, r.stderr
    assert "longer than 1 s" in r.stderr and "internal error" not in r.stderr
    assert time.monotonic() - started < 30


def test_a_query_past_its_memory_limit_fails_with_exit_2(log):
    q = "SELECT count(DISTINCT a.position * 1000000 + b.position * 1000 + c.position) FROM events a, events b, events c"
    r = uok("sql", q, "--memory-limit", "10MB", "--timeout", "60", "--db", str(log))
    assert r.returncode == 2, r.stderr
    assert "Out of Memory" in r.stderr and "--memory-limit 10MB" in r.stderr


@pytest.mark.parametrize(
    "query",
    [
        "SELECT " + "(" * 3000 + "1" + ")" * 3000,
        "SELECT * FROM " + "(SELECT * FROM " * 400 + "events" + ") t" * 400,
    ],
    ids=["deep expression", "deep subqueries"],
)
def test_a_query_nested_too_deeply_is_refused_with_exit_2(log, query: str):
    r = uok("sql", query, "--db", str(log))
    assert r.returncode == 2, r.stderr
    assert "internal error" not in r.stderr and r.stderr.count("uok:") == 1
    assert "deep" in r.stderr or "depth" in r.stderr


def test_bad_limits_are_input_errors(log):
    assert uok("sql", "SELECT 1", "--timeout", "0", "--db", str(log)).returncode == 2
    assert uok("sql", "SELECT 1", "--memory-limit", "lots", "--db", str(log)).returncode == 2


def start_slow_query(db: Path, *extra: str) -> subprocess.Popen:
    """``uok sql -v SLOW``; returns once the refresh is reported on stderr (the query is next)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}
    p = subprocess.Popen(
        [sys.executable, "-m", "uok", "sql", SLOW, "-v", "--timeout", "120", "--db", str(db), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = p.stderr.readline()  # type: ignore[union-attr]
    assert line.startswith("uok: copy"), line
    return p


def test_ctrl_c_stops_a_running_query_within_a_second_with_exit_130(log):
    p = start_slow_query(log)
    time.sleep(0.3)  # past the refresh report: the query is running (or about to: either way SIGINT ends it)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: it prints where it was
        pytest.fail(f"uok sql ignored SIGINT for 30 s; where it was:\n{p.communicate(timeout=30)[1]}")
    assert p.returncode == 130, err
    assert time.monotonic() - sent < 1.5
    assert err.strip() == "uok: interrupted"


def test_a_long_query_does_not_queue_the_next_one_behind_its_lock(log):
    p = start_slow_query(log)
    try:
        started = time.monotonic()
        r = uok("sql", "SELECT count(*) AS n FROM events", "--db", str(log), "--json")
        took = time.monotonic() - started
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
    assert r.returncode == 0, r.stderr
    assert '"n":' in r.stdout and "in use by another query" in r.stderr
    assert took < 15  # it used to wait 30 s for the lock, then fail
