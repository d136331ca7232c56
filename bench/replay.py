"""Replay speed on a 1,000,000-event kernel log.

    python bench/replay.py [--events N] [--runs K] [--seed S]

The log comes from ``bench/kernel_log.py`` (every decision in it was taken
by the real kernel), cached as ``bench/out/kernel-<N>.db``.

Figures:
  baseline   eventsourcing notification log: ``ApswApplicationRecorder
             .select_notifications`` in pages of 1,000, every event decoded
             with the codec (read + decode, nothing else)
  replay     ``uok.replay.replayer.replay_run`` for the last run of the log and
             for K runs spread evenly over it. Each replay folds everything
             before the run into a fresh kernel (skipping, undecoded, the
             event types the kernel does not fold), then re-drives the run's
             observations and compares every decision. Rate = (events folded
             + events replayed) / seconds. Every replay must find no
             divergence, or the figure is void.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uok.adapters.eventlog import EventLog
from uok.adapters.sqlite_store import SqliteEventStore
from uok.replay.replayer import replay_run, run_ids

from bench.kernel_log import cached
from bench.rebuild import baseline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    db = cached(ROOT / "bench" / "out" / f"kernel-{args.events // 1000}k.db", args.events, seed=args.seed)
    n_base, t_base = baseline(db)
    log = EventLog(SqliteEventStore(db, synchronous="NORMAL"))
    ids = run_ids(log)
    step = max(1, len(ids) // args.runs)
    picks = [ids[-1], *ids[step - 1 :: step][: args.runs]]
    rates, total_events, total_time = [], 0, 0.0
    for rid in picks:
        t = time.perf_counter()
        rep = replay_run(log, rid)
        dt = time.perf_counter() - t
        if rep.diverged:
            raise SystemExit(f"run {rid} diverged at {rep.divergence.position}: the benchmark log is not replayable")
        events = rep.events_folded + rep.events_replayed
        rates.append(events / dt)
        total_events += events
        total_time += dt
        if rid == ids[-1]:
            last = (rid, rep, dt)
    log.store.close()
    base_rate = n_base / t_base
    rid, rep, dt = last
    last_rate = (rep.events_folded + rep.events_replayed) / dt
    print(f"log: {n_base:,} events, {len(ids):,} runs ({db.name})")
    print(f"baseline  eventsourcing select_notifications + decode: {base_rate:>12,.0f} events/s ({t_base:.2f} s)")
    print(
        f"replay    last run {rid}: {rep.events_folded:,} folded + {rep.events_replayed:,} replayed in {dt:.2f} s "
        f"= {last_rate:,.0f} events/s = {last_rate / base_rate:.2f}x baseline   [target >= 100,000]"
    )
    print(
        f"          (positions 1..{rep.last_position:,} covered: {rep.last_position / dt:,.0f} positions/s; the "
        f"{rep.last_position - rep.events_folded - rep.events_replayed:,} events of types the kernel does not "
        "fold were read and hash-checked but not decoded, and are not counted above)"
    )
    print(
        f"replay    {len(picks)} runs across the log: {total_events:,} events in {total_time:.2f} s = "
        f"{total_events / total_time:,.0f} events/s (median per run {statistics.median(rates):,.0f}); "
        "no divergence"
    )


if __name__ == "__main__":
    main()
