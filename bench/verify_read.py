"""What reading with the hash chain verified costs (adapters/integrity.py).

    python bench/verify_read.py [--events N] [--repeat R]

Builds a log of N kernel-like events (UnitTransitioned, ~260-byte payloads,
10 per transaction) in a temp dir, then times, each R times (median):

  raw read        SqliteEventStore.read() over the whole log (the baseline)
  verified read   the same rows through EventLog.records(): every row's
                  SHA-256 link recomputed as it streams by (the default for
                  every reading CLI command since the reliability work)
  decode          EventLog(verify=False).events(): rows decoded to Structs
  verify+decode   EventLog().events(): what `uok status` / the runner fold pay
  verify_chain    SqliteEventStore.verify_chain() (what `uok verify` runs)

and prints rows/s and the ratio of each against the raw read and against
decode (the cost a command paid before verification was added).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev


def build(path: Path, n: int) -> None:
    store = SqliteEventStore(path, synchronous="NORMAL")
    log = EventLog(store)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    for b in range(n // 10):
        log.append(
            [
                ev.UnitTransitioned(
                    run_id="r20260101000000-abcdef",
                    at=at,
                    plan_id="bench",
                    unit_id=f"u{b}-{j}",
                    from_state="queued",
                    to_state="claimed",
                    attempt=1,
                    dispatches=1,
                    reason="x" * 60,
                    turn_id=f"r:{b}",
                )
                for j in range(10)
            ]
        )
    store.close()


def timed(fn, repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        build(db, a.events)
        store = SqliteEventStore(db)
        rows = {
            "raw read": lambda: sum(1 for _ in store.read()),
            "verified read": lambda: sum(1 for _ in EventLog(store).records()),
            "decode": lambda: sum(1 for _ in EventLog(store, verify=False).events()),
            "verify+decode": lambda: sum(1 for _ in EventLog(store).events()),
            "verify_chain": store.verify_chain,
        }
        results = {name: timed(fn, a.repeat) for name, fn in rows.items()}
        store.close()
    base, dec = results["raw read"], results["decode"]
    print(f"{a.events:,} events, median of {a.repeat}")
    print(f"{'':<15}{'seconds':>9}{'events/s':>13}{'x raw read':>12}{'x decode':>10}")
    for name, secs in results.items():
        print(f"{name:<15}{secs:>9.3f}{a.events / secs:>13,.0f}{secs / base:>12.2f}{secs / dec:>10.2f}")
    per_event_us = (results["verify+decode"] - dec) / a.events * 1e6
    print(f"verification adds {per_event_us:.2f} µs per event to a decoding read")


if __name__ == "__main__":
    main()
