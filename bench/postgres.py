"""Append throughput of the PostgreSQL event log against the apsw one,
with 1, 2 and 4 concurrent writer processes, in the same run; and units
completed per second by 1, 2 and 4 ``uok worker`` processes on one run.

    python bench/postgres.py [--part append|workers|all] [--events N] [--units U] [--task-seconds S]
                             [--repeat R] [--url URL]

Workers (``--part workers``): a plan of ``U`` (default 1,000) independent
short tasks (``true``; ``--task-seconds S``: ``sleep S``) run on a PostgreSQL schema of its own by ``uok run
--claims --workers 8`` with N ``uok worker`` processes (started first,
waiting for the run), against the baseline ``uok run --workers N`` running
the tasks on N threads of the run's own process, on the same server,
interleaved (local, claims, local, claims ...). The rate is units over the
wall time of the ``uok run`` process (its start-up included, the same for
both).

Every writer is its own process with its own store (as several hosts
would be), appending to its own streams; all start together on a barrier.
The rate is all events over the wall time from the barrier to the last
writer's last commit (each writer appends one warm-up event before the
barrier: connections open, statements prepared). Each configuration runs ``R`` times, apsw and
PostgreSQL interleaved (apsw, pg, apsw, pg ...) so machine noise falls on
both alike; the median is reported. Transactions of 1 event (one commit
each: the latency-bound case) and of 100 events (a run's bursts). Payloads
are ~200 bytes of JSON.

Durability is the default of each: SQLite WAL with ``synchronous=FULL``
(an fsync per commit), PostgreSQL with ``synchronous_commit=on`` (a WAL
flush per commit). PostgreSQL is the server at ``--url`` (default
``$UOK_TEST_PG`` or ``postgresql://postgres@127.0.0.1:5432/postgres``):
the bench creates its own database there and drops it at the end.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from uok.domain.log.store import NewRecord

from bench.append import payload

WRITERS = (1, 2, 4)
BATCHES = (1, 100)


def _writer(target: str, name: str, n: int, batch: int, ready, go, out) -> None:
    from uok.adapters.stores import open_event_store

    store = open_event_store(target, create=True)
    records = [NewRecord(f"{name}-{i // 10}", i % 10 + 1, "UnitProgressed/v1", payload(i)) for i in range(n)]
    work = [records[i : i + batch] for i in range(0, n, batch)]
    store.append([NewRecord(f"{name}-warm-up", 1, "UnitProgressed/v1", payload(0))])  # connections, statements
    ready.wait()
    go.wait()
    start = time.perf_counter()
    for b in work:
        store.append(b)
    out.put((start, time.perf_counter()))
    store.close()


def run_once(target: str, writers: int, per_writer: int, batch: int) -> float:
    """Events per second of ``writers`` processes appending ``per_writer`` each."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Barrier(writers + 1), ctx.Event(), ctx.Queue()
    from uok.adapters.stores import open_event_store

    open_event_store(target, create=True).close()  # created once, not raced by the writers
    procs = [
        ctx.Process(target=_writer, args=(target, f"w{k}", per_writer, batch, ready, go, out)) for k in range(writers)
    ]
    for p in procs:
        p.start()
    ready.wait()
    go.set()
    spans = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"a writer exited with {p.exitcode}")
    with open_event_store(target) as store:
        count, _ = store.verify_chain()
    total = writers * per_writer
    if count != total + writers:  # + one warm-up event per writer, before the barrier
        raise RuntimeError(f"expected {total + writers} events, the log holds {count}")
    return total / (max(e for _, e in spans) - min(s for s, _ in spans))


class Server:
    """A database of the bench's own on the PostgreSQL server, dropped at the end."""

    def __init__(self, admin: str):
        self.admin = admin
        self.dbname = f"uok_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {self.dbname} ENCODING 'UTF8' TEMPLATE template0")
            self.version = conn.execute("SHOW server_version").fetchone()[0]
            self.sync = conn.execute("SHOW synchronous_commit").fetchone()[0]
        self.url = urlunsplit(urlsplit(admin)._replace(path="/" + self.dbname))

    def target(self) -> str:
        return f"{self.url}?schema=b_{uuid.uuid4().hex[:10]}"

    def drop(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")


def units_plan(path: Path, units: int, seconds: float = 0.0) -> Path:
    command = f'["sleep", "{seconds:g}"]' if seconds > 0 else '["true"]'
    body = '[plan]\nid = "bench"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for i in range(units):
        body += f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = {command}\ndepends_on = []\n'
    path.write_text(body)
    return path


def units_per_second(target: str, plan: Path, workers: int, *, claims: bool, units: int) -> float:
    """Units/s of one run of ``plan``: on ``workers`` uok worker processes
    (``claims``) or on ``workers`` threads of the run itself."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("UOK_DB", None)
    uok = [sys.executable, "-m", "uok", "--db", target]
    from uok.adapters.stores import open_event_store

    open_event_store(target, create=True).close()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    serve = [*uok, "worker", "--wait", "600", "--lease", "30"]
    pool = [subprocess.Popen(serve, env=env, cwd=plan.parent, **quiet) for _ in range(workers if claims else 0)]
    args = ["--claims", "--workers", "8"] if claims else ["--workers", str(workers)]
    start = time.perf_counter()
    done = subprocess.run([*uok, "run", str(plan), "--quiet", *args], env=env, cwd=plan.parent, capture_output=True)
    elapsed = time.perf_counter() - start
    for w in pool:
        w.wait(timeout=120)
    if done.returncode != 0 or any(w.returncode != 0 for w in pool):
        raise RuntimeError(f"run exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return units / elapsed


def bench_workers(server: Server, units: int, repeat: int, seconds: float = 0.0) -> None:
    header = f"{'workers':>7} {'units':>6} {'run threads u/s':>16} {'uok worker u/s':>15} {'workers/threads':>16}"
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="uok-bench-workers-") as tmp:
        plan = units_plan(Path(tmp) / "plan.toml", units, seconds)
        for n in WRITERS:
            rates: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(repeat):  # interleaved: threads, workers, threads, workers ...
                for claims in (False, True):
                    rates[claims].append(units_per_second(server.target(), plan, n, claims=claims, units=units))
            local, remote = statistics.median(rates[False]), statistics.median(rates[True])
            print(f"{n:>7} {units:>6} {local:>16.1f} {remote:>15.1f} {remote / local:>15.2f}x", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=4000, help="events per writer at 100/txn (default 4000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration, median reported (default 3)")
    parser.add_argument("--part", choices=["append", "workers", "all"], default="all", help="what to measure")
    parser.add_argument("--units", type=int, default=1000, help="tasks of the workers' plan (default 1000)")
    parser.add_argument(
        "--task-seconds", type=float, default=0.0, help="each task sleeps this long (default 0: `true`, short tasks)"
    )
    default_url = os.environ.get("UOK_TEST_PG") or "postgresql://postgres@127.0.0.1:5432/postgres"
    parser.add_argument("--url", default=default_url, help="PostgreSQL server to create the bench database on")
    args = parser.parse_args(argv)
    began = time.perf_counter()
    server = Server(args.url)
    import apsw

    print(
        f"python {sys.version.split()[0]}, SQLite {apsw.sqlite_lib_version()} (apsw, WAL, synchronous=FULL), "
        f"PostgreSQL {server.version} (synchronous_commit={server.sync}), psycopg {psycopg.__version__}, "
        f"{os.cpu_count()} cpus"
    )
    if args.part in ("workers", "all"):
        try:
            bench_workers(server, args.units, args.repeat, args.task_seconds)
        finally:
            if args.part == "workers":
                server.drop()
        if args.part == "workers":
            print(f"(total {time.perf_counter() - began:.1f} s)")
            return
    header = f"{'writers':>7} {'events/txn':>10} {'events':>8} {'apsw ev/s':>11} {'postgres ev/s':>14} {'pg/apsw':>8}"
    print(header)
    print("-" * len(header))
    try:
        with tempfile.TemporaryDirectory(prefix="uok-bench-pg-") as tmp:
            for batch in BATCHES:
                per_writer = args.events if batch == 100 else max(50, args.events // 10)
                for writers in WRITERS:
                    rates: dict[str, list[float]] = {"apsw": [], "postgres": []}
                    for r in range(args.repeat):  # interleaved: apsw, pg, apsw, pg ...
                        rates["apsw"].append(
                            run_once(str(Path(tmp) / f"w{writers}-b{batch}-{r}.db"), writers, per_writer, batch)
                        )
                        rates["postgres"].append(run_once(server.target(), writers, per_writer, batch))
                    a, p = statistics.median(rates["apsw"]), statistics.median(rates["postgres"])
                    print(
                        f"{writers:>7} {batch:>10} {writers * per_writer:>8} {a:>11,.0f} {p:>14,.0f} {p / a:>7.2f}x",
                        flush=True,
                    )
    finally:
        server.drop()
    print(f"(total {time.perf_counter() - began:.1f} s)")


if __name__ == "__main__":
    main()
