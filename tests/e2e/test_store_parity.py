"""The same events give the same outputs on either store: a log copied
SQLite -> PostgreSQL -> SQLite keeps every position and hash (``uok copy``,
``uok verify``), replays with no divergence, and answers ``uok sql``,
``uok export``, ``uok state``, ``uok fork`` byte for byte as the original.
Following a log (``uok events --follow``, the bus) wakes on commits."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.domain.log.store import NewRecord

from tests.conftest import ROOT, uok
from tests.stores import Logs
from tests.tt_support import LOGS, event_rows


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture
def trio(pg_server, tmp_path: Path) -> tuple[Path, str, Path]:
    """The failures fixture log on SQLite, copied to PostgreSQL, and back to SQLite."""
    from uok.adapters.ndjson_log import import_log

    sqlite, back = tmp_path / "a.db", tmp_path / "back.db"
    import_log(LOGS / "failures.ndjson", sqlite).close()
    pg = pg_server.schema_url()
    ok(uok("copy", "--from", str(sqlite), "--to", pg, cwd=tmp_path))
    ok(uok("copy", "--from", pg, "--to", str(back), cwd=tmp_path))
    return sqlite, pg, back


def test_a_copy_there_and_back_verifies_with_the_same_head_and_replays(trio, tmp_path: Path) -> None:
    sqlite, pg, back = trio
    heads = {orjson.loads(ok(uok("verify", "--db", str(db), "--json", cwd=tmp_path)))["head"] for db in trio}
    assert len(heads) == 1
    assert event_rows(sqlite) == event_rows(pg) == event_rows(back)
    for db in (pg, back):
        out = ok(uok("replay", "--all", "--db", str(db), cwd=tmp_path))
        assert out.count("no divergence") >= 1 and "DIVERGENCE" not in out
    # a second copy into a full destination continues (nothing to do); a foreign one is refused
    again = orjson.loads(ok(uok("copy", "--from", str(sqlite), "--to", pg, "--json", cwd=tmp_path)))
    assert (again["copied"], again["resumed_from"]) == (0, len(event_rows(sqlite)))
    r = uok("copy", "--from", str(LOGS.parent / "nope.db"), "--to", pg, cwd=tmp_path)
    assert r.returncode == 2 and "no event log" in r.stderr
    other = tmp_path / "other.db"
    from uok.adapters.ndjson_log import import_log

    import_log(LOGS / "demo.ndjson", other).close()
    r = uok("copy", "--from", str(other), "--to", pg, cwd=tmp_path)
    assert r.returncode == 2 and "not the source's first" in r.stderr


def test_sql_export_and_state_answer_the_same_on_either_store(trio, tmp_path: Path) -> None:
    sqlite, pg, _ = trio
    for query in (
        "SELECT state, count(*) AS n FROM units GROUP BY state ORDER BY state",
        "SELECT type, count(*) AS n, max(position) AS last FROM events GROUP BY type ORDER BY type",
        "SELECT run_id, unit_id, to_state, reason FROM unit_transitions ORDER BY position",
    ):
        a = ok(uok("sql", query, "--db", str(sqlite), "--json", cwd=tmp_path))
        b = ok(uok("sql", query, "--db", pg, "--json", cwd=tmp_path))
        assert a == b and [orjson.loads(line) for line in a.splitlines()], query
    for fmt in ("jsonl", "parquet", "csv"):
        ok(uok("export", "--db", str(sqlite), "--format", fmt, "--out", str(tmp_path / f"a.{fmt}"), cwd=tmp_path))
        ok(uok("export", "--db", pg, "--format", fmt, "--out", str(tmp_path / f"b.{fmt}"), cwd=tmp_path))
        assert (tmp_path / f"a.{fmt}").read_bytes() == (tmp_path / f"b.{fmt}").read_bytes(), fmt
        ok(uok("verify", "--export", str(tmp_path / f"b.{fmt}"), "--db", str(sqlite), cwd=tmp_path))
    for at in ("20", "45", "71"):
        a = orjson.loads(ok(uok("state", "--at", at, "--db", str(sqlite), "--json", cwd=tmp_path)))
        b = orjson.loads(ok(uok("state", "--at", at, "--db", pg, "--json", cwd=tmp_path)))
        assert a == b, at


def test_fork_from_and_into_postgres_copies_the_history_byte_for_byte(trio, pg_server, tmp_path: Path) -> None:
    sqlite, pg, _ = trio
    rid = next(iter(orjson.loads(ok(uok("state", "--db", pg, "--json", cwd=tmp_path)))["runs"]))
    forks = [pg_server.schema_url(), tmp_path / "fork-of-pg.db"]
    for out in forks:
        summary = orjson.loads(
            ok(uok("fork", rid, "--at", "30", "--db", pg, "--out", str(out), "--json", cwd=tmp_path))
        )
        assert summary["forked_position"] == 31
        assert event_rows(out, upto=30) == event_rows(sqlite, upto=30)
    ok(uok("fork", rid, "--at", "30", "--db", str(sqlite), "--out", str(tmp_path / "fork-of-sqlite.db"), cwd=tmp_path))
    assert event_rows(tmp_path / "fork-of-sqlite.db")[:30] == event_rows(forks[0])[:30]
    r = uok("fork", rid, "--at", "30", "--db", pg, "--out", str(forks[0]), cwd=tmp_path)
    assert r.returncode == 2 and "already holds events" in r.stderr


def _lines(proc: subprocess.Popen) -> queue.Queue:
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_events_follow_prints_commits_as_they_land(logs: Logs) -> None:
    target = logs.new()
    with logs.open(target, create=True) as store:
        log = EventLog(store)
        bus = MessageBus(log)
        bus.send("a", "b", "hello", {"n": 1})
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1"}  # SIGABRT dumps its stacks
        env.pop("UOK_DB", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uok", "events", "--follow", "--json", "--db", str(target)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            lines = _lines(proc)
            assert orjson.loads(lines.get(timeout=60))["position"] == 1
            for n in (2, 3):
                bus.send("a", "b", "hello", {"n": n})
                row = orjson.loads(lines.get(timeout=60))
                assert row["position"] == n and row["event"]["payload"] == {"n": n}
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGABRT)
                pytest.fail(f"the follower ignored SIGINT for 30 s; where it was:\n{proc.communicate(timeout=30)[1]}")
        assert code == 130
        assert proc.stderr.read().strip() == "uok: interrupted"  # type: ignore[union-attr]


def test_a_bus_subscription_waits_for_the_next_message(logs: Logs) -> None:
    target = logs.new()
    with logs.open(target, create=True) as store, logs.open(target) as other:
        bus, sender = MessageBus(EventLog(store)), MessageBus(EventLog(other))
        sub = bus.subscribe("w")
        try:
            assert sub.wait(timeout=0.2) == []
            store.append([NewRecord("noise", 1, "Tick/v1", b"{}")])  # a commit that is no message for w
            timer = threading.Timer(0.3, lambda: sender.send("boss", "w", "do", {"x": 1}))
            timer.start()
            got = sub.wait(timeout=60)
            timer.join()
            assert [(m.sender, m.topic) for m in got] == [("boss", "do")]
        finally:
            sub.close()
