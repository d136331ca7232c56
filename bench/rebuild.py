"""Projection rebuild and time travel on a 1,000,000-event kernel log.

    python bench/rebuild.py [--events N] [--positions K] [--seed S]

The log is written once by the real kernel (``bench/kernel_log.py``) and
cached as ``bench/out/kernel-<N>.db``; each run works on a fresh copy, so
the cached file never carries read models.

Figures:
  baseline        eventsourcing notification log: ``ApswApplicationRecorder
                  .select_notifications`` in pages of 1,000, every event
                  decoded with the codec (read + decode everything, no fold)
  reference       ``EventLog.events()``: every row's chain hash recomputed and
                  every event decoded (uok's own verified whole-log read)
  rebuild         ``uok projections rebuild`` of every registered projection
                  from zero (reads every row and checks its chain hash, skips
                  undecoded what no projection wants, decodes the rest, folds,
                  commits every 10,000 events, snapshots every 10,000)
  state at P      ``ProjectionRunner.state_at(P)`` for K random positions:
                  nearest snapshot + fold forward, the rows folded over
                  hash-checked (median and max); "cold"
                  with a new runner per query (what one ``uok state --at P``
                  process does, minus interpreter start-up), "warm" with one
                  runner answering all K (decoded parts shared by digest)
  uok state --at P  whole ``python -m uok state --at P`` processes (the default
                  summary view, printed), for ``--processes`` random positions:
                  interpreter start, imports, opening the log, the query,
                  the output; wall time and the child's CPU time
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from uok.adapters.es_apsw import ApswApplicationRecorder
from uok.adapters.projection_store import SqliteProjectionStore
from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain.log import codec
from uok.projections import registry
from uok.projections.runner import DEFAULT_SNAPSHOT_EVERY, ProjectionRunner, fold_from_zero

from bench.kernel_log import cached


def baseline(db: Path) -> tuple[int, float]:
    """Read every notification through the eventsourcing recorder and decode it."""
    store = SqliteEventStore(db, synchronous="NORMAL")
    rec = ApswApplicationRecorder(store)
    decode = codec.decode
    n, start = 0, time.perf_counter()
    nxt = 1
    while True:
        page = rec.select_notifications(nxt, 1000)
        if not page:
            break
        for note in page:
            decode(note.topic, note.state)
        n += len(page)
        nxt = page[-1].id + 1
    elapsed = time.perf_counter() - start
    store.close()
    return n, elapsed


def verified_baseline(db: Path) -> tuple[int, float]:
    """uok's own whole-log read: ``EventLog.events()`` recomputes the hash
    chain of every row and decodes every event (what ``uok status`` pays)."""
    from uok.adapters.eventlog import EventLog

    store = SqliteEventStore(db, synchronous="NORMAL")
    n, start = 0, time.perf_counter()
    for _pos, _e in EventLog(store).events():
        n += 1
    elapsed = time.perf_counter() - start
    store.close()
    return n, elapsed


# byte-compiled imports, as an installed uok has (this workplace's shell may set PYTHONDONTWRITEBYTECODE)
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "UOK_DB")}


def state_process(db: Path, position: int) -> tuple[float, float]:
    """(wall ms, CPU ms) of one ``python -m uok state --at P`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-m", "uok", "--db", str(db), "state", "--at", str(position)],
        env=ENV,
        capture_output=True,
        check=False,
    )
    wall = (time.perf_counter() - t) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"uok state --at {position} failed ({r.returncode}): {r.stderr.decode()[-2000:]}")
    return wall, ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--positions", type=int, default=100)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snapshot-every", type=int, default=DEFAULT_SNAPSHOT_EVERY)
    ap.add_argument("--processes", type=int, default=30, help="whole `uok state --at P` processes to time")
    args = ap.parse_args()
    src = cached(ROOT / "bench" / "out" / f"kernel-{args.events // 1000}k.db", args.events, seed=args.seed)
    with tempfile.TemporaryDirectory(dir=ROOT / "bench" / "out") as tmp:
        db = Path(tmp) / "log.db"
        shutil.copy(src, db)
        n_base, t_base = baseline(db)
        n_ver, t_ver = verified_baseline(db)
        store = SqliteEventStore(db, synchronous="NORMAL")
        ps = SqliteProjectionStore(store)
        runner = ProjectionRunner(ps, ps, registry.ALL, snapshot_every=args.snapshot_every)
        head = store.head()[0]
        start = time.perf_counter()
        runner.rebuild()
        t_rebuild = time.perf_counter() - start
        rng = random.Random(args.seed)
        positions = [rng.randint(1, head) for _ in range(args.positions)]
        cold, warm, cold_cpu, warm_cpu = [], [], [], []
        for p in positions:  # cold: a new runner each time, as one `uok state --at P` process has
            fresh = ProjectionRunner(ps, ps, registry.ALL, snapshot_every=args.snapshot_every)
            t, c = time.perf_counter(), time.process_time()
            fresh.state_at(p)
            cold.append((time.perf_counter() - t) * 1000)
            cold_cpu.append((time.process_time() - c) * 1000)
        for p in positions:  # warm: one runner answering many queries (its decoded-part cache is filled)
            t, c = time.perf_counter(), time.process_time()
            runner.state_at(p)
            warm.append((time.perf_counter() - t) * 1000)
            warm_cpu.append((time.process_time() - c) * 1000)
        checked = positions[:2]
        for p in checked:  # the figures are only worth something if the answers are right
            assert runner.state_at(p) == fold_from_zero(ps, registry.ALL, p), p
        storage = ps.storage()
        store.close()
        state_process(db, head)  # byte-compiles what the command imports, outside the measurement
        procs = [state_process(db, rng.randint(1, head)) for _ in range(args.processes)]
    base_rate = n_base / t_base
    rate = head / t_rebuild
    print(f"log: {head:,} events, {src.stat().st_size / 1e6:.0f} MB ({src.name})")
    print(f"projections: {', '.join(p.name for p in registry.ALL)}; snapshot every {args.snapshot_every:,} events")
    print(f"baseline  eventsourcing select_notifications + decode: {base_rate:>12,.0f} events/s ({t_base:.2f} s)")
    print(f"reference EventLog.events(): chain verified + decode:  {n_ver / t_ver:>12,.0f} events/s ({t_ver:.2f} s)")
    print(
        f"rebuild   all projections from zero:                   {rate:>12,.0f} events/s ({t_rebuild:.2f} s)"
        f"  = {rate / base_rate:.2f}x baseline   [target >= 200,000]"
    )
    for label, times, cpus in (("cold", cold, cold_cpu), ("warm", warm, warm_cpu)):
        print(
            f"state at  {len(times)} random positions, {label}: median {statistics.median(times):.1f} ms, "
            f"max {max(times):.1f} ms; CPU median {statistics.median(cpus):.1f} ms, max {max(cpus):.1f} ms"
            "   [target <= 50 ms]"
        )
    print(f"          (answers checked against a fold from zero at {checked})")
    if procs:
        walls, cpus = [w for w, _ in procs], [c for _, c in procs]
        print(
            f"uok state --at P, {len(procs)} whole processes: wall median {statistics.median(walls):.1f} ms, "
            f"max {max(walls):.1f} ms; CPU median {statistics.median(cpus):.1f} ms, max {max(cpus):.1f} ms"
            f"   [target: max < 50 ms]  (load average {os.getloadavg()[0]:.2f})"
        )
    print(
        f"read-model storage: parts {storage['parts'] / 1e6:.1f} MB, snapshot manifests "
        f"{storage['manifests'] / 1e6:.1f} MB, snapshot blobs {storage['blobs'] / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
