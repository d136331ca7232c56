"""uok against the durable orchestrators a user would otherwise pick, on the
same workloads, interleaved in one run.

Workloads (every step runs ``true`` as a subprocess and its progress is made
durable in SQLite on local disk before the next step starts):

* **chain**: one chain of ``--steps`` steps (default 1,000);
* **parallel**: ``--chains`` chains (default 10) of ``steps / chains`` steps
  each, run concurrently (uok: ``--workers min(chains, 8)``, its maximum;
  the peers: one thread per chain).

Contenders, each in a fresh interpreter (``--child``) on a fresh temp dir,
started in a rotated order each round so that no one always runs first:

* **bare**: ``subprocess.run(["true"])`` in a loop (chain) or in one
  thread per chain (parallel): the baseline. *Overhead* is a contender's
  ms/step minus bare's ms/step of the same round and workload.
* **uok**: the plan (one slice per chain, one task per step, command
  ``["true"]``) through ``uok.bootstrap`` exactly as ``uok run`` builds it
  (default flags: writer tokens, turn closeout, redaction), log at
  ``synchronous=FULL``, WAL; timed from ``KernelRunner.run()`` to its end.
* **dbos** (if importable; the ``bench`` extra): a ``@DBOS.workflow`` of
  ``@DBOS.step`` calls on its SQLite system database, which this bench puts
  in WAL mode before DBOS opens it (DBOS leaves SQLite's default
  ``synchronous=FULL``); timed around the workflow call(s), after
  ``DBOS.launch()``.
* **langgraph** (if importable): a one-node ``StateGraph`` looping on
  itself, compiled with ``SqliteSaver`` (which sets WAL; synchronous stays
  FULL), invoked with ``durability="sync"`` (each checkpoint is written
  before the next step runs; its default, "async", writes them in the
  background); timed around ``invoke``.

Measured per contender and workload:

* **ms/step**: wall time of the workload / steps, median over ``--repeat``
  rounds;
* **overhead**: ms/step minus bare's in the same round, median;
* **fsyncs/step**: in one extra round per contender, the child runs under
  ``strace -f --seccomp-bpf -e trace=fsync,fdatasync,getppid``; the child
  calls ``getppid()`` right before and right after the timed workload, and
  every ``fsync``/``fdatasync`` line (any thread) between those two markers
  is counted (the ``true`` children make none). Timed rounds run without
  strace. Needs ``strace``; otherwise the column says ``n/a``;
* **CPU ms/step**: CPU time of the contender's process (every thread,
  ``time.process_time``; the ``true`` children are not counted) over the
  timed workload / steps; *CPU overhead* is that minus bare's (the cost of
  starting each child is in both). Less sensitive to the machine's load
  than wall time (what other processes do does not count), though a
  loaded machine still makes each CPU-second do less;
* **bytes/step**: growth of the database files over the workload, each
  measured after ``PRAGMA wal_checkpoint(TRUNCATE)`` (so the WAL is folded
  into the main file), divided by steps.

Usage (from the repository root; ``pip install -e '.[bench]'`` for peers)::

    .venv/bin/python bench/peers.py                       # 1000 steps, 10 chains, 3 rounds
    .venv/bin/python bench/peers.py --steps 200 --repeat 1 --peers uok,dbos
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("bare", "uok", "dbos", "langgraph")
PEER_MODULES = {"dbos": "dbos", "langgraph": "langgraph.checkpoint.sqlite"}
UOK_MAX_WORKERS = 8


# ---------------------------------------------------------------- the children


def chain_lengths(steps: int, chains: int) -> list[int]:
    base, extra = divmod(steps, chains)
    return [base + (1 if i < extra else 0) for i in range(chains)]


def db_bytes(path: Path) -> int:
    """Size of a SQLite database with its WAL folded in (0 if absent)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def pragmas(path: Path) -> dict[str, str]:
    conn = sqlite3.connect(path)
    try:
        return {"journal_mode": conn.execute("PRAGMA journal_mode").fetchone()[0]}
    finally:
        conn.close()


def run_threads(fn, lengths: list[int]) -> None:
    errors: list[BaseException] = []

    def guarded(i: int, n: int) -> None:
        try:
            fn(i, n)
        except BaseException as exc:  # reported after the join  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i, n)) for i, n in enumerate(lengths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def true_step() -> None:
    subprocess.run(["true"], check=True)


def child_bare(work: Path, lengths: list[int], timed) -> dict:
    def chain(_i: int, n: int) -> None:
        for _ in range(n):
            true_step()

    if len(lengths) == 1:
        timed(lambda: chain(0, lengths[0]))
    else:
        timed(lambda: run_threads(chain, lengths))
    return {}


def uok_plan(lengths: list[int]) -> str:
    out = ['[plan]\nid = "peers"\n\n[[milestones]]\nid = "M"\n']
    for c, n in enumerate(lengths):
        out.append(f'[[milestones.slices]]\nid = "c{c}"\n')
        out.extend(f'[[milestones.slices.tasks]]\nid = "c{c}s{s}"\ncommand = ["true"]\n' for s in range(n))
    return "\n".join(out)


def uok_runner(work: Path, lengths: list[int]):
    """(log, runner) of the peers plan on a fresh ``work/events.db`` at
    ``synchronous=FULL``, as ``uok run`` builds them (bench/cpu_per_task.py
    and bench/events_per_task.py run the same)."""
    from uok import bootstrap

    plan = work / "plan.toml"
    plan.write_text(uok_plan(lengths), encoding="utf-8")
    # the runaway cap (500 turns per run, behaviour §5) would stop a 1,000-step chain
    prepared = bootstrap.prepare_run(plan, flags={"max_iterations": 10 * sum(lengths) + 100})
    log = bootstrap.open_log(str(work / "events.db"), create=True, synchronous="FULL")
    return log, bootstrap.assemble_runner(log, prepared, workers=min(len(lengths), UOK_MAX_WORKERS))


def child_uok(work: Path, lengths: list[int], timed) -> dict:
    db = work / "events.db"
    log, runner = uok_runner(work, lengths)
    # measured through uok's own (apsw) connection: a stdlib sqlite3 connection to the same
    # file in this process, closed while apsw's is open, drops apsw's POSIX locks and deletes the WAL
    log.store.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    wal = db.with_name(db.name + "-wal")
    before = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    result = timed(runner.run)
    log.store.close()
    if result.exit_code != 0:
        raise SystemExit(f"uok run failed: {result}")
    return {"db": str(db), "before": before, "synchronous": "FULL"}


def child_dbos(work: Path, lengths: list[int], timed) -> dict:
    db = work / "dbos.sqlite"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    from dbos import DBOS

    DBOS(config={"name": "peers", "system_database_url": f"sqlite:///{db}"})

    @DBOS.step()
    def step(i: int) -> int:
        true_step()
        return i

    @DBOS.workflow()
    def chain(n: int) -> int:
        for i in range(n):
            step(i)
        return n

    DBOS.launch()
    before = db_bytes(db)
    try:
        if len(lengths) == 1:
            timed(lambda: chain(lengths[0]))
        else:

            def parallel() -> None:
                handles = [DBOS.start_workflow(chain, n) for n in lengths]
                for h in handles:
                    h.get_result()

            timed(parallel)
    finally:
        DBOS.destroy()
    return {"db": str(db), "before": before, "synchronous": "FULL (SQLite default)"}


def child_langgraph(work: Path, lengths: list[int], timed) -> dict:
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, StateGraph

    class State(TypedDict):
        n: int
        goal: int

    def step(s: State) -> dict:
        true_step()
        return {"n": s["n"] + 1}

    g = StateGraph(State)
    g.add_node("step", step)
    g.set_entry_point("step")
    g.add_conditional_edges("step", lambda s: END if s["n"] >= s["goal"] else "step")
    db = work / "langgraph.sqlite"
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()  # WAL and its tables (otherwise done lazily on first use)
    app = g.compile(checkpointer=saver)
    before = db_bytes(db)

    def chain(i: int, n: int) -> None:
        cfg = {"configurable": {"thread_id": f"t{i}"}, "recursion_limit": n + 10}
        app.invoke({"n": 0, "goal": n}, cfg, durability="sync")

    if len(lengths) == 1:
        timed(lambda: chain(0, lengths[0]))
    else:
        timed(lambda: run_threads(chain, lengths))
    conn.close()
    return {"db": str(db), "before": before, "synchronous": "FULL (SQLite default)"}


CHILDREN = {"bare": child_bare, "uok": child_uok, "dbos": child_dbos, "langgraph": child_langgraph}


def child_main(args: argparse.Namespace) -> None:
    work = Path(args.dir)
    lengths = chain_lengths(args.steps, 1 if args.workload == "chain" else args.chains)
    clock: dict[str, float] = {}

    def timed(fn):
        os.getppid()  # strace marker: the workload starts
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        clock["wall"] = time.perf_counter() - t
        clock["cpu"] = time.process_time() - c  # every thread of this process; the `true` children excluded
        os.getppid()  # strace marker: the workload ended
        return out

    t0 = time.perf_counter()
    info = CHILDREN[args.child](work, lengths, timed)
    total = time.perf_counter() - t0
    out = {"pid": os.getpid(), "wall": clock["wall"], "cpu": clock["cpu"], "total": total, "steps": sum(lengths)}
    if "db" in info:
        db = Path(info["db"])
        out["bytes"] = db_bytes(db) - info["before"]
        out["journal_mode"] = pragmas(db)["journal_mode"]
        out["synchronous"] = info["synchronous"]
    import resource

    out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


# ---------------------------------------------------------------- the parent

MARK = re.compile(r"^(\d+)\s+getppid\(")  # also "getppid( <unfinished ...>"
SYNC = re.compile(r"^\d+\s+(fsync|fdatasync)\(")


def count_fsyncs(trace: Path, pid: int) -> int:
    inside, n = False, 0
    for line in trace.read_text().splitlines():
        m = MARK.match(line)
        if m and int(m.group(1)) == pid:
            if inside:
                return n
            inside = True
        elif inside and SYNC.match(line):
            n += 1
    raise RuntimeError(f"no closing marker for pid {pid} in {trace}")


def run_child(name: str, workload: str, args: argparse.Namespace, strace: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"peers-{name}-"))
    try:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name, "--workload", workload]
        cmd += ["--steps", str(args.steps), "--chains", str(args.chains), "--dir", str(work)]
        trace = work / "strace.out"
        if strace:
            cmd = ["strace", "-f", "--seccomp-bpf", "-e", "trace=fsync,fdatasync,getppid", "-o", str(trace), *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{name}/{workload} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        if strace:
            out["fsyncs"] = count_fsyncs(trace, out["pid"])
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def available(names: list[str]) -> list[str]:
    out = []
    for n in names:
        mod = PEER_MODULES.get(n)
        if mod is None or (importlib.util.find_spec(mod.split(".")[0]) and importlib.util.find_spec(mod)):
            out.append(n)
        else:
            print(f"# {n}: not installed (pip install -e '.[bench]'), skipped", file=sys.stderr)
    return out


def fmt(x: float | None, spec: str = ".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def report(
    workload: str, chains: int, rounds: list[dict[str, dict]], counts: dict[str, dict], names: list[str]
) -> None:
    ms = {n: [r[n]["wall"] / r[n]["steps"] * 1000 for r in rounds] for n in names}
    over = {n: [a - b for a, b in zip(ms[n], ms["bare"], strict=True)] for n in names}
    cpu = {n: [r[n]["cpu"] / r[n]["steps"] * 1000 for r in rounds] for n in names}
    cover = {n: [a - b for a, b in zip(cpu[n], cpu["bare"], strict=True)] for n in names}
    med = {n: statistics.median(ms[n]) for n in names}
    omed = {n: statistics.median(over[n]) for n in names}
    cmed = {n: statistics.median(cpu[n]) for n in names}
    comed = {n: statistics.median(cover[n]) for n in names}
    steps = rounds[0]["bare"]["steps"]
    print(f"\n## {workload}: {steps} steps" + (f" in {chains} chains" if workload == "parallel" else ""))
    print(
        "| contender | ms/step (median) | min–max | overhead ms/step | overhead vs uok"
        " | CPU ms/step | CPU overhead ms/step | fsyncs/step | bytes/step |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in names:
        c = counts.get(n, {})
        fs = c["fsyncs"] / c["steps"] if "fsyncs" in c else None
        by = statistics.median(r[n]["bytes"] for r in rounds) / steps if "bytes" in rounds[0][n] else None
        vs = omed[n] / omed["uok"] if n != "bare" and "uok" in omed and omed["uok"] > 0 else None
        print(
            f"| {n} | {med[n]:.2f} | {min(ms[n]):.2f}–{max(ms[n]):.2f} | {fmt(omed[n] if n != 'bare' else None)}"
            f" | {fmt(vs) + 'x' if vs is not None else 'n/a'} | {cmed[n]:.2f}"
            f" | {fmt(comed[n] if n != 'bare' else None)} | {fmt(fs)} | {fmt(by, ',.0f')} |"
        )
    if "uok" in names:
        for peer in names:
            if peer in ("bare", "uok"):
                continue
            ratio = omed["uok"] / omed[peer] if omed[peer] > 0 else float("inf")
            cratio = comed["uok"] / comed[peer] if comed[peer] > 0 else float("inf")
            print(
                f"uok overhead / {peer} overhead = {ratio:.2f}x; uok ms/step / {peer} ms/step = {med['uok'] / med[peer]:.2f}x;"
                f" CPU overhead: {cratio:.2f}x"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds (each contender once per round)")
    ap.add_argument("--peers", default=",".join(CONTENDERS[1:]), help="comma-separated: uok,dbos,langgraph")
    ap.add_argument("--workloads", default="chain,parallel")
    ap.add_argument("--no-fsync", action="store_true", help="skip the strace round")
    ap.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    ap.add_argument("--workload", choices=["chain", "parallel"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args)
        return
    names = ["bare", *available([p for p in args.peers.split(",") if p and p != "bare"])]
    use_strace = not args.no_fsync and shutil.which("strace") is not None
    print(
        f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]},"
        f" SQLite {sqlite3.sqlite_version}; fsync counting: {'strace' if use_strace else 'off'}"
    )
    for workload in args.workloads.split(","):
        rounds: list[dict[str, dict]] = []
        for r in range(args.repeat):
            order = names[r % len(names) :] + names[: r % len(names)]
            rounds.append({n: run_child(n, workload, args, strace=False) for n in order})
            summary = ", ".join(f"{n} {rounds[-1][n]['wall'] / rounds[-1][n]['steps'] * 1000:.2f}" for n in order)
            print(f"# {workload} round {r + 1}: ms/step {summary}", file=sys.stderr)
        counts = {n: run_child(n, workload, args, strace=True) for n in names} if use_strace else {}
        for n in names:
            if n != "bare" and "journal_mode" in rounds[0][n]:
                print(f"# {n}: journal_mode={rounds[0][n]['journal_mode']}, synchronous={rounds[0][n]['synchronous']}")
        report(workload, args.chains, rounds, counts, names)


if __name__ == "__main__":
    main()
