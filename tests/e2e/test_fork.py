"""`uok fork`: the fork's history up to P is byte-identical to the parent's;
after P it diverges only by its own events; `uok run` continues it; `uok
diff --against` finds the fork point."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson
from uok.domain.log import codec

from tests.conftest import FIXTURES, uok
from tests.tt_support import event_rows, fixture_db


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _events(db: Path) -> list[dict]:
    r = uok("events", "--db", str(db), "--json")
    assert r.returncode == 0, r.stderr
    return [orjson.loads(line) for line in r.stdout.splitlines()]


def test_fork_mid_run_then_continue_it(tmp_path: Path):
    parent = fixture_db("demo", tmp_path)
    parent_digest = _digest(parent)
    rows = event_rows(parent)
    first_run = codec.decode(rows[0][3], rows[0][4]).run_id
    at = 40  # inside the first run: units in flight, the run still open
    fork = tmp_path / "fork.db"
    r = uok("fork", first_run, "--at", str(at), "--db", str(parent), "--out", str(fork), "--json")
    assert r.returncode == 0, r.stderr
    summary = orjson.loads(r.stdout)
    assert summary["position"] == at and summary["forked_position"] == at + 1
    assert summary["open_runs"] == [first_run]

    assert event_rows(fork, upto=at) == rows[:at]  # byte-identical, hashes included
    [(pos, stream, _version, topic, payload, _h)] = event_rows(fork)[at:]
    marker = codec.decode(topic, payload)
    assert (pos, stream, topic) == (at + 1, "fork", "RunForked/v1")
    assert marker.forked_from.run_id == first_run and marker.forked_from.position == at
    assert marker.forked_from.head_hash == rows[at - 1][5].hex()
    assert marker.forked_from.db_path == str(parent.resolve())

    # the fork is a resumable log: a new run recovers the cut run and finishes the plan
    plan_dir = tmp_path / "plan"
    shutil.copytree(FIXTURES / "plans", plan_dir, ignore=shutil.ignore_patterns("out", "bad"))
    # flaky had used 2 of its 3 attempts by P and its 2nd was cut off by the fork
    # (recovered: stale -> attempt 3); let its last attempt find its marker
    (plan_dir / "out").mkdir()
    (plan_dir / "out" / "flaky.marker").touch()
    r = uok("run", str(plan_dir / "demo.toml"), "--db", str(fork), "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    after = _events(fork)
    assert [row["hash"] for row in after[:at]] == [row[5].hex() for row in rows[:at]]  # history untouched
    own = after[at + 1 :]
    new_run = own[0]["event"]["run_id"]
    assert new_run != first_run and all(row["event"]["run_id"] == new_run for row in own)
    recovered = [row["event"] for row in own if row["event"]["type"] == "RunRecovered"]
    assert [e["recovered_run"] for e in recovered] == [first_run]
    assert _digest(parent) == parent_digest  # the parent was only read

    # replay works on the fork: the cut run up to P, the new run in full
    r = uok("replay", new_run, "--db", str(fork))
    assert r.returncode == 0 and "no divergence" in r.stdout, r.stdout

    d = orjson.loads(uok("diff", "--db", str(fork), "--against", str(parent), "--json").stdout)
    assert d["logs"]["first_difference"] == at + 1 and d["logs"]["common_history"] == at
    assert d["logs"]["event_a"] == "RunForked/v1"
    assert new_run in d["runs_missing"]  # present in the fork, not in the parent
    text = uok("diff", "--db", str(fork), "--against", str(parent))
    assert f"identical up to position {at}" in text.stdout
    same = orjson.loads(uok("diff", "--db", str(fork), "--against", str(parent), "--at", str(at), "--json").stdout)
    assert same["units"] == [] and same["new_runs"] == [] and same["runs_missing"] == []


def test_fork_refuses_bad_requests(tmp_path: Path):
    parent = fixture_db("failures", tmp_path)
    rows = event_rows(parent)
    rid = codec.decode(rows[0][3], rows[0][4]).run_id
    out = tmp_path / "f.db"
    r = uok("fork", rid, "--at", str(len(rows) + 1), "--db", str(parent), "--out", str(out))
    assert r.returncode == 2 and "outside the log" in r.stderr and not out.exists()
    r = uok("fork", "nosuch", "--at", "3", "--db", str(parent), "--out", str(out))
    assert r.returncode == 2 and "no run 'nosuch'" in r.stderr and not out.exists()
    out.write_bytes(b"")
    r = uok("fork", rid, "--at", "3", "--db", str(parent), "--out", str(out))
    assert r.returncode == 2 and "already exists" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_fork_at_the_head_of_a_finished_run_is_the_whole_history(tmp_path: Path):
    parent = fixture_db("failures", tmp_path)
    rows = event_rows(parent)
    rid = codec.decode(rows[0][3], rows[0][4]).run_id
    fork = tmp_path / "whole.db"
    r = uok("fork", rid, "--at", str(len(rows)), "--db", str(parent), "--out", str(fork))
    assert r.returncode == 0, r.stderr
    assert event_rows(fork, upto=len(rows)) == rows
    assert "detached" not in r.stdout  # nothing was open at the head
    assert uok("verify", "--db", str(fork)).returncode == 0
