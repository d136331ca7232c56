"""History as data, timed: DuckDB copy, SQL group-bys, export and verify.

    python bench/analytics.py [--events 1000000] [--repeat 7]

On ``--events`` generated events (``bench/eventgen.py``: whole simulated
runs of the real event Structs, appended through SqliteEventStore at
synchronous=NORMAL; cached in ``bench/out/``), in one run:

* baseline: reading the same rows with raw apsw (paged ``fetchall``, no
  hashing, nothing built) — the floor any copy pays;
* load: ``uok.adapters.analytics.refresh`` into a fresh DuckDB copy (apsw ->
  Arrow -> DuckDB, hash chain checked for every event), events/s;
* typed catch-up: extracting every typed table (``from_json``), rows/s;
* group-bys: ``SELECT topic, count(*) FROM events GROUP BY topic`` and one
  over a typed view, median ms on an open read-only connection, plus the
  whole ``analytics.run`` call (statement check + connect + query);
* export (jsonl, parquet) and ``verify --export``, events/s, and the log's
  own chain check (``SqliteEventStore.verify_chain``) for reference.

The load checks every hash in C (``uok.adapters.analytics._chain``, OpenSSL
SHA-256 over a whole page per call) where the extension was built; the
table says which checker ran. ``--check-ab N`` loads N more fresh copies
with the C check alternating with N with it switched off (the DuckDB and
hashlib check that runs where the extension is not built): wall and CPU
seconds of each, CPU-seconds per million events, A and B interleaved.

``--threads-ab N`` then loads N more fresh copies with DuckDB's threads
during the load as chosen (``reader.load_threads()``: every core but the
reader's) alternating with N at DuckDB's default (a thread per core):
wall and CPU seconds of each, A and B interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apsw
from uok.adapters import analytics
from uok.adapters.analytics import batches, loader, reader, readonly
from uok.adapters.export import export
from uok.adapters.export_verify import verify_export
from uok.adapters.sqlite_store import SqliteEventStore

from bench.eventgen import fill

OUT = Path(__file__).resolve().parent / "out"
Q_EVENTS = "SELECT topic, count(*) FROM events GROUP BY topic"
Q_TYPED = "SELECT gate_id, outcome, count(*) FROM gate_runs GROUP BY ALL"
Q_UNITS = "SELECT state, count(*) FROM units GROUP BY state"


def log_of(n: int) -> Path:
    db = OUT / f"analytics-{n}.db"
    if not db.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        tmp = db.with_suffix(".tmp")
        for p in tmp.parent.glob(tmp.name + "*"):
            p.unlink()
        t = time.perf_counter()
        with SqliteEventStore(tmp, synchronous="NORMAL") as store:
            fill(store, n)
            store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tmp.rename(db)
        print(f"generated {n:,} events in {time.perf_counter() - t:.1f} s -> {db}")
    return db


def raw_read(db: Path) -> float:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    t = time.perf_counter()
    after, n = 0, 0
    while True:
        rows = conn.execute(
            "SELECT position, stream, version, topic, payload, hash FROM events "
            "WHERE position > ? ORDER BY position LIMIT 5000",
            (after,),
        ).fetchall()
        if not rows:
            break
        n += len(rows)
        after = rows[-1][0]
    conn.close()
    return time.perf_counter() - t


def median_ms(fn, repeat: int) -> float:
    fn()  # warm
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def checker() -> str:
    return "C" if batches.FIRST_BROKEN is not None else "DuckDB+hashlib"


def timed_load(db: Path, copy: Path, threads: int | None, native=True) -> tuple[float, float]:
    """(wall, CPU) seconds of one load into a fresh copy with ``threads``
    (None: as the loader chooses), with the C check or without (``native``)."""
    reader.LOAD_THREADS = threads
    natives = batches.FIRST_BROKEN, batches.OFFSETS, batches.SPLIT_PAGE
    if not native:  # as where the extension is not built
        batches.FIRST_BROKEN = batches.OFFSETS = batches.SPLIT_PAGE = None
    try:
        cpu = time.process_time()
        r = loader.refresh(db, copy)
        cpu = time.process_time() - cpu
    finally:
        reader.LOAD_THREADS = None
        batches.FIRST_BROKEN, batches.OFFSETS, batches.SPLIT_PAGE = natives
        for p in copy.parent.glob(copy.name + "*"):
            p.unlink()
    return r.seconds, cpu


def threads_ab(db: Path, tmp: Path, reps: int, n: int, base: float) -> list[tuple[str, str, str]]:
    """``reps`` loads each way, alternating: DuckDB threads as the loader
    chooses them against DuckDB's default (a thread per core)."""
    cores = os.cpu_count() or 1
    ways = {f"load_threads() = {reader.load_threads()}": reader.load_threads(), f"= all {cores} cores": cores}
    runs: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    for i in range(reps):
        for way, threads in ways.items():
            runs[way].append(timed_load(db, tmp / f"ab{i}.duckdb", threads))
    out = []
    for way, times in runs.items():
        walls = ", ".join(f"{w:.2f}/{c:.2f}" for w, c in times)
        best = n / min(w for w, _ in times)
        out.append((f"  load, DuckDB threads {way}: wall/CPU s", walls, f"{best / base:.2f}x best"))
    return out


def check_ab(db: Path, tmp: Path, reps: int, n: int, base: float) -> list[tuple[str, str, str]]:
    """``reps`` loads each way, alternating: the C extension (check, page
    split, offsets) against the DuckDB and hashlib check with the page
    built in Python (the extension switched off: the code before it)."""
    if batches.FIRST_BROKEN is None:
        return [("  check A/B", "skipped: the C check is not built here", "")]
    ways = {"C extension": True, "without it (DuckDB+hashlib check)": False}
    runs: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
    for i in range(reps):
        for way, native in ways.items():
            runs[way].append(timed_load(db, tmp / f"check{i}.duckdb", None, native))
    out = []
    for way, times in runs.items():
        walls = ", ".join(f"{w:.2f}/{c:.2f}" for w, c in times)
        cpu = sorted(c * 1e6 / n for _, c in times)
        best = n / min(w for w, _ in times)
        out.append(
            (
                f"  load, {way}: wall/CPU s",
                f"{walls} (CPU-s per million {cpu[0]:.2f}-{cpu[-1]:.2f})",
                f"{best / base:.2f}x best",
            )
        )
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=7, help="query repetitions (median reported)")
    p.add_argument("--threads-ab", type=int, default=0, metavar="N", help="N more loads each way, alternating")
    p.add_argument(
        "--check-ab", type=int, default=0, metavar="N", help="N more loads with the C check and without, alternating"
    )
    a = p.parse_args()
    db = log_of(a.events)
    n = a.events
    load_before = os.getloadavg()[0]
    rows: list[tuple[str, str, str]] = []

    base_s = min(raw_read(db), raw_read(db))
    base = n / base_s
    rows.append(("raw apsw read (baseline)", f"{base:,.0f} events/s", "1.00x"))

    with tempfile.TemporaryDirectory(prefix="uok-bench-") as tmp:
        copy = Path(tmp) / "copy.duckdb"
        cpu = time.process_time()
        r = loader.refresh(db, copy)
        cpu = time.process_time() - cpu
        assert r.loaded == n, r
        rate = n / r.seconds
        rows.append(
            (
                f"ANALYTICS LOAD (apsw->Arrow->DuckDB, chain checked in {checker()})",
                f"{rate:,.0f} events/s ({r.seconds:.2f} s, {cpu:.2f} s CPU, {cpu * 1e6 / n:.2f} CPU-s/M)",
                f"{rate / base:.2f}x",
            )
        )
        t = time.perf_counter()
        r2 = loader.refresh(db, copy)
        rows.append(("refresh with nothing new", f"{(time.perf_counter() - t) * 1000:.0f} ms ({r2.loaded} loaded)", ""))

        con = readonly.seal(loader.connect(copy, read_only=True, config=readonly.SAFE_CONFIG))
        lazy_ms = median_ms(lambda: con.execute(Q_TYPED).fetchall(), a.repeat)
        con.close()
        r3 = loader.refresh(db, copy, typed="all")
        typed_rows = sum(r3.materialized.values())
        rows.append(
            (
                "typed tables catch-up (from_json, all 13)",
                f"{typed_rows / r3.materialize_seconds:,.0f} rows/s ({typed_rows:,} rows, {r3.materialize_seconds:.2f} s)",
                "",
            )
        )

        con = readonly.seal(loader.connect(copy, read_only=True, config=readonly.SAFE_CONFIG))
        for label, q in (
            ("group-by over all events", Q_EVENTS),
            ("group-by over gate_runs (typed view)", Q_TYPED),
            ("units view (fold per unit)", Q_UNITS),
        ):
            rows.append((f"{label}: {q}", f"{median_ms(lambda q=q: con.execute(q).fetchall(), a.repeat):.1f} ms", ""))
        rows.append(("  same gate_runs group-by before catch-up (JSON on the fly)", f"{lazy_ms:.1f} ms", ""))
        con.close()
        whole = median_ms(lambda: analytics.run(copy, Q_EVENTS), a.repeat)
        rows.append(("analytics.run(events group-by): check + connect + query", f"{whole:.1f} ms", ""))

        for fmt in ("jsonl", "parquet"):
            out = Path(tmp) / f"e.{fmt}"
            with SqliteEventStore(db, readonly=True) as store:
                t = time.perf_counter()
                export(store, out, fmt)
                s = time.perf_counter() - t
            rows.append(
                (
                    f"export {fmt} (chain checked)",
                    f"{n / s:,.0f} events/s ({s:.2f} s, {out.stat().st_size / 1e6:.0f} MB)",
                    f"{n / s / base:.2f}x",
                )
            )
            t = time.perf_counter()
            v = verify_export(out)
            s = time.perf_counter() - t
            assert v.count == n
            rows.append((f"verify --export {fmt}", f"{n / s:,.0f} events/s ({s:.2f} s)", f"{n / s / base:.2f}x"))
            out.unlink()
        with SqliteEventStore(db, readonly=True) as store:
            t = time.perf_counter()
            store.verify_chain()
            s = time.perf_counter() - t
        rows.append(
            (
                "uok verify chain (SqliteEventStore.verify_chain)",
                f"{n / s:,.0f} events/s ({s:.2f} s)",
                f"{n / s / base:.2f}x",
            )
        )
        size = copy.stat().st_size
        if a.check_ab:
            rows += check_ab(db, Path(tmp), a.check_ab, n, base)
        if a.threads_ab:
            rows += threads_ab(db, Path(tmp), a.threads_ab, n, base)
    w = max(len(r[0]) for r in rows)
    print(
        f"\n{n:,} events, log {db.stat().st_size / 1e6:.0f} MB, DuckDB copy {size / 1e6:.0f} MB; "
        f"{os.cpu_count()} CPUs, load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after\n"
    )
    print(f"{'measure':<{w}}  {'result':<40} vs raw read")
    for label, result, ratio in rows:
        print(f"{label:<{w}}  {result:<40} {ratio}")
    load = rows[1]
    print(f"\nload: {load[1]}, {load[2]} the raw read; target 500,000 events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
