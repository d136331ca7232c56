"""CPU per task of a uok run, through the path bench/peers.py times (issue 15).

A chain (or ``--chains`` parallel chains) of ``--tasks`` tasks running
``true``, built by ``uok.bootstrap`` as ``uok run`` builds it (default
flags, ``synchronous=FULL``, WAL), in this process. Prints per task:

* CPU time of the process (every thread: ``time.process_time``; the
  ``true`` children are not counted), of the main thread, of the loop
  (the main thread less the executions it ran itself: decisions,
  appends, bookkeeping) and of the executions (spawn, output, turn files;
  in the pool, or on the loop's thread for a lone chain's step, issue 15:
  "of which inline"), over ``runner.run()``;
* SQL statements run on the log's connection (``exec_trace``), appends
  (``SqliteEventStore.append`` calls), commits, events and bytes of payload.

CPU-seconds are less sensitive to the machine's load than wall time (what
other processes do is not counted), but a loaded machine still makes each
CPU-second do less (cold caches after every wake-up): compare runs taken
side by side. The statement, append and event counts do not depend on the
load at all.

Usage (from the repository root)::

    .venv/bin/python bench/cpu_per_task.py                    # 300 tasks, one chain, 3 runs
    .venv/bin/python bench/cpu_per_task.py --tasks 300 --chains 10 --runs 5
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # the same plan as the peer benchmark


def one(tasks: int, chains: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="uok-cpu-"))
    log, runner = peers.uok_runner(work, peers.chain_lengths(tasks, chains))
    store = log.store
    statements: collections.Counter[str] = collections.Counter()

    def trace(_cursor, sql: str, _bindings) -> bool:
        statements[sql.split(None, 1)[0].upper()] += 1
        return True

    store.connection.exec_trace = trace
    appends = {"n": 0}
    real_append = store.append

    def append(*a, **kw):
        appends["n"] += 1
        return real_append(*a, **kw)

    store.append = append  # type: ignore[method-assign]
    from uok.adapters import turnwork

    # executions: in the pool (execution, the rest of a handed-over one) or on the loop's thread (run_inline)
    workers = {"cpu": 0.0, "inline": 0.0}
    lock = threading.Lock()
    real = {name: getattr(turnwork.TurnWork, name) for name in ("execution", "_rest", "run_inline")}

    def timed(name: str):
        def wrapper(self, *a, **kw):
            c = time.thread_time()
            try:
                return real[name](self, *a, **kw)
            finally:
                spent = time.thread_time() - c
                with lock:
                    workers["cpu"] += spent
                    if name == "run_inline":
                        workers["inline"] += spent

        return wrapper

    for name in real:
        setattr(turnwork.TurnWork, name, timed(name))
    try:
        p0, t0 = time.process_time(), time.thread_time()
        result = runner.run()
        process, main = time.process_time() - p0, time.thread_time() - t0
    finally:
        for name, fn in real.items():
            setattr(turnwork.TurnWork, name, fn)
    store.connection.exec_trace = None
    events, payload = store.connection.execute("SELECT count(*), sum(length(payload)) FROM events").fetchall()[0]
    store.close()
    if result.exit_code != 0:
        raise SystemExit(f"uok run failed: {result}")
    return {
        "process ms": process * 1000 / tasks,
        "main thread ms": main * 1000 / tasks,
        "loop ms": (main - workers["inline"]) * 1000 / tasks,  # the main thread less the executions it ran
        "executions ms": workers["cpu"] * 1000 / tasks,
        "of which inline": workers["inline"] * 1000 / tasks,
        "SQL statements": sum(statements.values()) / tasks,
        "INSERTs": statements["INSERT"] / tasks,
        "appends": appends["n"] / tasks,
        "commits": statements["COMMIT"] / tasks,
        "events": events / tasks,
        "payload bytes": payload / tasks,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3, help="runs, each in this process on a fresh log")
    ap.add_argument(
        "--spawn-ab",
        action="store_true",
        help="the tasks of each run started by subprocess.Popen and by the direct fork_exec call in turn "
        "(uok.adapters.childproc.FAST): each path's executions' CPU per task, and the ratio",
    )
    args = ap.parse_args()
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    if args.spawn_ab:
        _spawn_ab(args, load)
        return
    rows = [one(args.tasks, args.chains) for _ in range(args.runs)]
    print(f"# {args.tasks} tasks in {args.chains} chain(s), {args.runs} runs, load {load}; per task:")
    for key in rows[0]:
        values = [r[key] for r in rows]
        print(f"{key:16s} median {statistics.median(values):9.3f}  min {min(values):9.3f}  max {max(values):9.3f}")


def _spawn_ab(args: argparse.Namespace, load: str) -> None:
    """The tasks of each run started alternately by ``subprocess.Popen`` and by
    the direct ``fork_exec`` call (``childproc.FAST`` flipped before each
    execution): the two share every moment of the run, so the machine's load
    falls on both alike. Each execution's CPU (its thread's) goes to its path."""
    from uok.adapters import childproc, turnwork

    if not childproc.FAST:
        raise SystemExit("no direct fork_exec call on this Python: nothing to compare")
    spent: dict[bool, list[float]] = {True: [], False: []}
    real = turnwork.TurnWork.run_inline, turnwork.TurnWork.execution
    turn = {"n": 0}
    lock = threading.Lock()

    def flip(fn):
        def wrapper(self, *a, **kw):
            with lock:
                turn["n"] += 1
                fast = childproc.FAST = bool(turn["n"] % 2)
            c = time.thread_time()
            try:
                return fn(self, *a, **kw)
            finally:
                with lock:
                    spent[fast].append(time.thread_time() - c)

        return wrapper

    turnwork.TurnWork.run_inline, turnwork.TurnWork.execution = flip(real[0]), flip(real[1])
    try:
        per_run = []
        for _ in range(args.runs):
            before = {k: len(v) for k, v in spent.items()}
            one(args.tasks, args.chains)
            per_run.append({k: statistics.mean(v[before[k] :]) * 1000 for k, v in spent.items()})
    finally:
        turnwork.TurnWork.run_inline, turnwork.TurnWork.execution = real
        childproc.FAST = True
    with open("/proc/loadavg") as f:
        end = f.read().split()[0]
    print(f"# {args.tasks} tasks in {args.chains} chain(s), {args.runs} runs, load {load} -> {end};")
    print("# executions' CPU per task (ms, mean of each run's tasks), started by turns: Popen / direct fork_exec")
    for r in per_run:
        print(f"run  Popen {r[False]:.3f}  fork_exec {r[True]:.3f}  {r[True] / r[False]:.2f}x")
    p, f = (statistics.median(r[k] for r in per_run) for k in (False, True))
    print(f"median  Popen {p:.3f}  fork_exec {f:.3f}  {f / p:.2f}x  ({(p - f) * 1000:.0f} us less per task)")


if __name__ == "__main__":
    main()
