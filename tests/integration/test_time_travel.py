"""`uok state --at P` and `uok diff`: for a recorded demo run, the state at
every position equals the state rebuilt from zero to that position."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from uok.adapters.cli.commands.state import view_at
from uok.adapters.log_store import open_log_store
from uok.adapters.readmodels import ReadModels
from uok.projections import registry
from uok.projections.runner import fold_from_zero
from uok.projections.units import UnitRuntimeProjection
from uok.replay.timetravel import diff_views, system_view

from tests.conftest import uok
from tests.stores import tamper


@pytest.fixture(scope="module")
def demo_db(module_logs) -> Path | str:
    """The demo fixture log, on apsw and on PostgreSQL (one per module and store)."""
    return module_logs.fixture("demo")


def _json(r) -> dict:
    assert r.returncode == 0, r.stderr
    return orjson.loads(r.stdout)


def test_state_at_every_position_equals_a_rebuild_from_zero(demo_db, monkeypatch):
    """Through the same code path as the CLI (ReadModels + view_at), with a
    snapshot every 16 events so most positions start from a snapshot."""
    monkeypatch.setenv("UOK_SNAPSHOT_EVERY", "16")
    store = open_log_store(demo_db)
    rm = ReadModels(store, snapshot_every=16)
    rm.catch_up()
    head = rm.head()
    assert len(rm.pstore.snapshot_positions("units", UnitRuntimeProjection.version)) == head // 16
    for p in range(head + 1):
        expected = system_view(fold_from_zero(rm.pstore, registry.ALL, p), p)
        assert view_at(rm, p) == expected, p
    store.close()


def test_uok_state_cli_matches_a_rebuild_from_zero(demo_db, tmp_path: Path):
    store = open_log_store(demo_db)
    rm = ReadModels(store)
    head = rm.head()
    picks = [1, 2, 15, head // 2, head - 1, head]
    expected = {p: system_view(fold_from_zero(rm.pstore, registry.ALL, p), p) for p in picks}
    store.close()
    for p in picks:
        got = _json(uok("state", "--at", str(p), "--db", str(demo_db), "--json"))
        assert got.pop("head") == head
        assert got == orjson.loads(orjson.dumps(expected[p])), p
        reference = _json(uok("state", "--at", str(p), "--from-zero", "--db", str(demo_db), "--json"))
        reference.pop("head")
        assert got == reference, p
    v = _json(uok("state", "--at", "15", "--db", str(demo_db), "--json"))
    [run] = v["runs"].values()
    assert run["status"] == "open"  # mid-run: entered, not exited yet
    assert v["plans"]["demo"]["by_state"] == {"claimed": 1, "queued": 11}
    end = _json(uok("state", "--db", str(demo_db), "--json"))
    assert {r["status"] for r in end["runs"].values()} == {"ok"}
    assert set(end["plans"]["demo"]["by_state"]) == {"completed"} and end["turns_in_flight"] == []
    text = uok("state", "--at", "20", "--db", str(demo_db))
    assert text.returncode == 0 and "state at position 20" in text.stdout and "turns in flight (2)" in text.stdout


def test_state_for_one_run_and_bad_positions(demo_db):
    rid = next(iter(_json(uok("state", "--db", str(demo_db), "--json"))["runs"]))
    v = _json(uok("state", "--run", rid, "--db", str(demo_db), "--json"))
    assert list(v["runs"]) == [rid] and list(v["plans"]) == ["demo"]
    r = uok("state", "--at", "999999", "--db", str(demo_db))
    assert r.returncode == 2 and "outside the log" in r.stderr
    r = uok("state", "--run", "nosuch", "--db", str(demo_db))
    assert r.returncode == 2 and "no run 'nosuch'" in r.stderr


def test_diff_between_two_positions(demo_db):
    d = _json(uok("diff", "14", "22", "--db", str(demo_db), "--json"))
    moved = {u["unit_id"]: (u["from"], u["to"]) for u in d["units"]}
    assert moved == {"flaky": ("queued", "running"), "prepare": ("queued", "running")}
    assert len(d["turns_started"]) == 2 and d["turns_finished"] == [] and d["new_runs"] == []
    whole = _json(uok("diff", "0", "194", "--db", str(demo_db), "--json"))
    assert len(whole["new_runs"]) == 2
    assert {u["to"] for u in whole["units"]} == {"completed"}
    same = uok("diff", "30", "30", "--db", str(demo_db))
    assert same.returncode == 0 and "no change" in same.stdout
    assert uok("diff", "3", "--db", str(demo_db)).returncode == 2


def test_diff_views_reports_breakers_costs_and_gate_runs():
    a = {
        "position": 1,
        "runs": {},
        "plans": {},
        "turns_in_flight": [],
        "breakers": {"tests": {"state": "closed"}},
        "gates": {"tests": {"runs": 2}},
        "costs": {"usd": 0.5, "input_tokens": 10, "output_tokens": 5},
    }
    b = {
        "position": 9,
        "runs": {"r2": {"status": "open"}},
        "plans": {},
        "turns_in_flight": [],
        "breakers": {"tests": {"state": "open"}},
        "gates": {"tests": {"runs": 5}},
        "costs": {"usd": 0.75, "input_tokens": 30, "output_tokens": 5},
    }
    d = diff_views(a, b)
    assert d["breakers"] == [{"gate_id": "tests", "from": "closed", "to": "open"}]
    assert d["gate_runs"] == {"tests": 3} and d["new_runs"] == ["r2"]
    assert d["cost_delta"] == {"usd": 0.25, "input_tokens": 20, "output_tokens": 0}


def test_an_altered_log_is_refused_not_time_travelled(logs):
    """One byte of one payload changed behind the store's back (valid SQLite
    or PostgreSQL rows, valid JSON): every read-model command recomputes the
    chain over what it reads and exits 3 with one line, instead of showing a
    state made of altered events."""
    db = logs.fixture("failures")
    tamper(db, b'"unit_id":"boom"', b'"unit_id":"bang"')
    for args in (
        ["state"],
        ["state", "--at", "60"],
        ["diff", "1", "60"],
        ["parity"],
        ["replay", "--all"],
        ["projections", "rebuild"],
    ):
        r = uok(*args, "--db", str(db))
        assert r.returncode == 3, (args, r.returncode, r.stdout, r.stderr)
        assert "hash chain broken at position" in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
