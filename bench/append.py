"""Append throughput: the uok event log against raw apsw and the stock
eventsourcing SQLite module.

    python bench/append.py [--events N] [--repeat R]

``N`` is the number of events per run for 100-event transactions; runs with
one event per transaction use ``N // 10`` events at FULL (one fsync each)
and ``N // 4`` at NORMAL. Each configuration runs ``R`` times on a fresh
file in a temp dir; the median rate is reported. Payloads are ~200 bytes of
JSON; streams hold 10 events each (batches of 100 span 10 streams).

Rows:
  uok store      SqliteEventStore.append (hash chain, gapless positions)
  uok es         the eventsourcing recorder of uok.adapters.es_apsw (same store)
  raw apsw       executemany into an equivalent table inside BEGIN IMMEDIATE /
                 COMMIT, positions counted in Python, no hashing, no head read
  stdlib es      eventsourcing.sqlite (stdlib sqlite3) SQLiteApplicationRecorder
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import apsw
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnectionPool, SQLiteDatastore
from uok.adapters.es_apsw import ApswApplicationRecorder
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log.store import NewRecord

STREAM_LEN = 10
RAW_SCHEMA = """CREATE TABLE events (
    position INTEGER PRIMARY KEY, stream TEXT NOT NULL, version INTEGER NOT NULL,
    topic TEXT NOT NULL, payload BLOB NOT NULL, hash BLOB NOT NULL, UNIQUE(stream, version))"""
RAW_INSERT = "INSERT INTO events (position, stream, version, topic, payload, hash) VALUES (?, ?, ?, ?, ?, ?)"


def payload(i: int) -> bytes:
    body = {"run_id": "r-0001", "unit": f"unit-{i}", "at": "2026-01-01T00:00:00+00:00", "status": "progress"}
    raw = orjson.dumps(body)
    body["note"] = "x" * max(0, 200 - len(raw) - 11)
    return orjson.dumps(body)


def workload(n: int) -> list[tuple[uuid.UUID, int, str, bytes]]:
    ids = [uuid.uuid4() for _ in range(n // STREAM_LEN + 1)]
    return [(ids[i // STREAM_LEN], i % STREAM_LEN + 1, "UnitProgressed/v1", payload(i)) for i in range(n)]


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# Each runner takes (dir, sync, events, batch) and returns elapsed seconds.


def run_store(d: Path, sync: str, events: list, batch: int) -> float:
    store = SqliteEventStore(d / "uok.db", synchronous=sync)
    work = batches([NewRecord(str(s), v, t, p) for s, v, t, p in events], batch)
    start = time.perf_counter()
    for b in work:
        store.append(b)
    elapsed = time.perf_counter() - start
    assert store.count() == len(events)
    store.close()
    return elapsed


def run_store_es(d: Path, sync: str, events: list, batch: int) -> float:
    store = SqliteEventStore(d / "uok.db", synchronous=sync)
    recorder = ApswApplicationRecorder(store)
    work = batches([StoredEvent(s, v, t, p) for s, v, t, p in events], batch)
    start = time.perf_counter()
    for b in work:
        recorder.insert_events(b)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed


def run_raw(d: Path, sync: str, events: list, batch: int) -> float:
    conn = apsw.Connection(str(d / "raw.db"))
    conn.set_busy_timeout(10000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={sync}")
    conn.execute(RAW_SCHEMA)
    no_hash = bytes(32)
    work = batches([(i + 1, str(s), v, t, p, no_hash) for i, (s, v, t, p) in enumerate(events)], batch)
    start = time.perf_counter()
    for b in work:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(RAW_INSERT, b)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


class _SyncPool(SQLiteConnectionPool):
    """The stock pool, plus the durability setting under test (the module
    itself never sets ``synchronous``, so it runs at SQLite's FULL)."""

    synchronous = "FULL"

    def _create_connection(self):  # type: ignore[no-untyped-def]
        conn = super()._create_connection()
        conn._sqlite_conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn


def run_stdlib(d: Path, sync: str, events: list, batch: int) -> float:
    datastore = SQLiteDatastore(db_name=str(d / "stdlib.db"))
    datastore.pool.close()
    datastore.pool = _SyncPool(db_name=str(d / "stdlib.db"))
    datastore.pool.synchronous = sync
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    work = batches([StoredEvent(s, v, t, p) for s, v, t, p in events], batch)
    start = time.perf_counter()
    for b in work:
        recorder.insert_events(b)
    elapsed = time.perf_counter() - start
    assert recorder.max_notification_id() == len(events)
    datastore.close()
    return elapsed


RUNNERS: dict[str, Callable[[Path, str, list, int], float]] = {
    "uok store": run_store,
    "uok es": run_store_es,
    "raw apsw": run_raw,
    "stdlib es": run_stdlib,
}


def measure(name: str, sync: str, n: int, batch: int, repeat: int) -> float:
    events = workload(n)
    rates = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="uok-bench-") as tmp:
            rates.append(n / RUNNERS[name](Path(tmp), sync, events, batch))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=50000, help="events per run at 100/txn (default 50000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration, median reported (default 5)")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    print(
        f"python {sys.version.split()[0]}, SQLite {apsw.sqlite_lib_version()} (apsw), "
        f"{sqlite3.sqlite_version} (stdlib), {os.cpu_count()} cpus"
    )
    header = f"{'config':<28}{'events':>8}{'events/s':>12}{'vs raw apsw':>13}{'vs stdlib es':>14}"
    print(header)
    print("-" * len(header))
    for sync in ("FULL", "NORMAL"):
        for batch in (1, 100):
            n = args.events if batch == 100 else args.events // (10 if sync == "FULL" else 4)
            rates = {name: measure(name, sync, n, batch, args.repeat) for name in RUNNERS}
            for name, rate in rates.items():
                vs_raw = rate / rates["raw apsw"]
                vs_std = rate / rates["stdlib es"]
                print(f"{f'{name} {sync} {batch}/txn':<28}{n:>8}{rate:>12,.0f}{vs_raw:>12.2f}x{vs_std:>13.2f}x")
    print(f"(total {time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
