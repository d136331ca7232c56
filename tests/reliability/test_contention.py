"""4 processes append 5,000 events each to one log at the same moment.

Every append is its own ``BEGIN IMMEDIATE`` transaction computing
``position = last + 1`` and the chain hash from the previous row, so the
test fails if the store ever lets two writers read the same head: the log
must hold exactly 20,000 events, positions 1..20,000, every writer's events
in its own order (versions 1..5,000, payload matching), and a valid chain.
The writers must actually interleave, or the test proved nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from uok.adapters.sqlite_store import SqliteEventStore

from tests.conftest import ROOT
from tests.reliability.support import assert_log_whole

pytestmark = pytest.mark.reliability

WRITERS = 4
EACH = 5000


def test_four_writers_twenty_thousand_events_no_gap_no_duplicate(tmp_path: Path):
    db = tmp_path / "contended.db"
    SqliteEventStore(db).close()  # schema first, so the writers only contend on appends
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.contention_writer", str(db), str(w), str(EACH), str(go)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(WRITERS)
    ]
    time.sleep(0.5)  # all four have opened the store and are polling for go
    started = time.perf_counter()
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    elapsed = time.perf_counter() - started

    count = assert_log_whole(db)
    assert count == WRITERS * EACH
    with SqliteEventStore(db) as store:
        rows = store.query("SELECT position, stream, version, payload FROM events ORDER BY position")
    per_writer: dict[str, list[int]] = {}
    switches = 0
    for i, (position, stream, version, payload) in enumerate(rows):
        assert position == i + 1
        body = orjson.loads(payload)
        assert stream == f"w:{body['w']}" and version == body["v"]
        per_writer.setdefault(stream, []).append(version)
        switches += i > 0 and rows[i - 1][1] != stream
    assert dict(per_writer.items()) == {f"w:{w}": list(range(1, EACH + 1)) for w in range(WRITERS)}
    assert switches >= 20, f"writers barely interleaved ({switches} switches): no contention was tested"
    print(
        f"\ncontention: {WRITERS} writers x {EACH} = {count} events in {elapsed:.2f}s "
        f"({count / elapsed:,.0f} tx/s), {switches} writer switches, chain valid"
    )
