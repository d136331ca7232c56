"""The parity report (behaviour §7): enter/exit pairs from the runs projection,
open runs classified with a live pid probe."""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.projections.runs import RunView
from uok.replay.parity import UNMATCHED_RUN_STALE_MS, build_report

from tests.conftest import uok
from tests.tt_support import fixture_db

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def run(rid: str, status: str = "open", minutes_ago: int = 1, **kw) -> RunView:
    return RunView(
        run_id=rid,
        status=status,
        entered_at=NOW - timedelta(minutes=minutes_ago),
        exits=0 if status == "open" else 1,
        **kw,
    )


def test_classification_rules():
    runs = {
        "ok": run("ok", "ok"),
        "term": run("term", "terminated"),
        "err": run("err", "error", error="boom"),
        "rec": run("rec", "recovered"),
        "alive-old": run("alive-old", minutes_ago=600, pid=5),
        "dead": run("dead", pid=6),
        "elsewhere-young": run("elsewhere-young", minutes_ago=5, host="other"),
        "elsewhere-stale": run("elsewhere-stale", minutes_ago=31, host="other"),
        "forked": run("forked", detached=True),
    }
    probes = {"alive-old": True, "dead": False, "elsewhere-young": None, "elsewhere-stale": None}
    rep = build_report(runs, probes, now=NOW, source_path="x.db")
    assert UNMATCHED_RUN_STALE_MS == 1_800_000
    assert rep.matched == 2 and rep.runs == 9 and rep.total_events == 9 + 4
    assert rep.statuses == {"error": 1, "ok": 1, "open": 5, "recovered": 1, "terminated": 1}
    assert rep.paths == {"uok-kernel": 9} and rep.fallback_invocations == 0
    assert rep.critical_mismatches == ["boom"]
    assert {r.run_id for r in rep.in_progress} == {"alive-old", "elsewhere-young"}
    assert {r.run_id for r in rep.fresh_mismatches} == {"dead", "elsewhere-stale", "forked"}
    assert {r.run_id for r in rep.historical_mismatches} == {"err", "rec"}
    assert "stale" in next(r.detail for r in rep.fresh_mismatches if r.run_id == "elsewhere-stale")


def test_parity_of_the_recovery_fixture(tmp_path: Path):
    db = fixture_db("recovery", tmp_path)
    rep = orjson.loads(uok("parity", "--db", str(db), "--json").stdout)
    assert rep["statuses"] == {"ok": 1, "recovered": 1, "terminated": 1}
    assert rep["matched"] == 2 and rep["fresh_mismatches"] == [] and rep["in_progress"] == []
    [hist] = rep["historical_mismatches"]
    assert hist["status"] == "recovered" and "recovered by" in hist["detail"]
    assert rep["total_events"] == 6 and rep["duplicate_exits"] == []


def test_open_runs_are_probed_live(tmp_path: Path):
    """One open run whose pid is alive (this test process) and one whose pid
    is dead (a finished child): in progress vs orphaned."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    import os

    store = SqliteEventStore(tmp_path / "p.db")
    log = EventLog(store)
    at = datetime.now(UTC)
    host = socket.gethostname()
    for rid, pid in (("live", os.getpid()), ("gone", dead_pid)):
        log.append([ev.KernelEntered(run_id=rid, at=at, pid=pid, host=host, plan_path="p", plan_source="", workers=1)])
    store.close()
    r = uok("parity", "--db", str(tmp_path / "p.db"), "--json")
    assert r.returncode == 0, r.stderr
    rep = orjson.loads(r.stdout)
    assert [x["run_id"] for x in rep["in_progress"]] == ["live"]
    assert [x["run_id"] for x in rep["fresh_mismatches"]] == ["gone"]
    text = uok("parity", "--db", str(tmp_path / "p.db")).stdout
    assert "fresh mismatches (orphaned): 1" in text and f"pid {dead_pid} not running" in text
