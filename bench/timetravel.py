"""Time travel in one process: uok's state as of a past position against
LangGraph's checkpointer reading a past checkpoint, on 10,000-step
histories, measured in the same run, queries interleaved.

* **uok**: a log of about ``--steps`` turns written by the real kernel
  (bench/kernel_log.py: 40-unit plans, gates, priced usage, failures,
  crashes and recoveries), its read models built (snapshots every 10,000
  events, deltas every 1,000, as ``uok`` keeps them). P is drawn uniformly
  over the log.
* **langgraph** (if installed, the ``bench`` extra): a one-node looping
  ``StateGraph`` run ``--steps`` steps with ``SqliteSaver``
  (``durability="sync"``, one checkpoint per step). One query = the graph
  compiled with a NEW ``SqliteSaver`` on the open connection and
  ``get_state`` at a checkpoint drawn uniformly among the thread's.

Like for like: a LangGraph thread is one run of a plan, and ``get_state``
reads that thread's state at a checkpoint. The uok query that matches it
is the state of ONE run as of P (what ``uok state --at P --run ID``
computes: the run's record, its plan's units, its turns, its costs;
``uok.replay.timetravel.run_states`` + ``system_view``), the run being the
one live at P:

* ``uok run, cold``: a NEW ``ProjectionRunner`` per query (nothing decoded
  or read before), as a new saver per LangGraph query;
* ``uok run, warm``: one runner answering every query, as a process that
  time-travels repeatedly does (``uok ui``): parts it decoded and the
  events of the windows it folded are kept (bounded, projections/asof.py);
* ``uok run, warm, steady``: one runner that has answered the same queries
  twice already (reading, then indexing each window it needs), keeping up to ``--window-events`` decoded events (what a
  long-lived process reaches; the bench prints how many it kept);
* ``uok whole system, cold``: every run and unit of the log as of P (what
  ``uok state --at P --all`` computes), for reference: not LangGraph's work.

uok hash-checks every event since the nearest snapshot (a one-run query:
up to 100, the read models it reads take a delta every 100 events);
LangGraph checks nothing it reads. Each figure: wall time and
the process's CPU time (steadier on a loaded machine).

    .venv/bin/python bench/timetravel.py        # = --steps 10000 --queries 100
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from uok.adapters.projection_store import SqliteProjectionStore
from uok.adapters.sqlite_store import SqliteEventStore
from uok.projections import registry
from uok.projections.runner import ProjectionRunner
from uok.replay.timetravel import VIEW_PROJECTIONS, run_states, system_view

from bench.kernel_log import generate

EVENTS_PER_TURN = 16  # about, on the generated log; the exact turn count is reported


def uok_log(work: Path, steps: int) -> tuple[SqliteProjectionStore, int, int]:
    db = work / "uok.db"
    generate(db, steps * EVENTS_PER_TURN, seed=7)
    store = SqliteEventStore(db, synchronous="NORMAL")
    ps = SqliteProjectionStore(store)
    ProjectionRunner(ps, ps, registry.ALL).rebuild()
    turns = store.query("SELECT count(*) FROM events WHERE topic LIKE 'TurnStarted/%'")[0][0]
    return ps, store.head()[0], turns


def runs_by_entry(ps: SqliteProjectionStore, head: int) -> tuple[list[int], list[str]]:
    """Entry positions (sorted) and run ids, to find the run live at P."""
    runs = ProjectionRunner(ps, ps, registry.ALL).state_at(head, ["runs"])["runs"]
    entries = sorted((r.entered_position, rid) for rid, r in runs.items() if r.entered_position)
    return [e[0] for e in entries], [e[1] for e in entries]


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000


def uok_run_query(ps: SqliteProjectionStore, runner: ProjectionRunner | None, position: int, run: str) -> None:
    runner = runner or ProjectionRunner(ps, ps, registry.ALL)
    view = system_view(run_states(runner.state_at, position, run), position, run=run)
    assert list(view["runs"]) == [run]


def uok_whole_query(ps: SqliteProjectionStore, position: int) -> None:
    runner = ProjectionRunner(ps, ps, registry.ALL)
    system_view(runner.state_at(position, VIEW_PROJECTIONS), position)


def langgraph_history(work: Path, steps: int):
    from typing import TypedDict

    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, StateGraph

    class State(TypedDict):
        n: int
        goal: int

    g = StateGraph(State)
    g.add_node("step", lambda s: {"n": s["n"] + 1})
    g.set_entry_point("step")
    g.add_conditional_edges("step", lambda s: END if s["n"] >= s["goal"] else "step")
    conn = sqlite3.connect(work / "langgraph.sqlite", check_same_thread=False)
    app = g.compile(checkpointer=SqliteSaver(conn))
    cfg = {"configurable": {"thread_id": "t"}, "recursion_limit": steps + 10}
    app.invoke({"n": 0, "goal": steps}, cfg, durability="sync")
    ids = [
        c.config["configurable"]["checkpoint_id"] for c in SqliteSaver(conn).list({"configurable": {"thread_id": "t"}})
    ]
    return g, conn, ids


def langgraph_query(g, conn, checkpoint_id: str) -> None:
    from langgraph.checkpoint.sqlite import SqliteSaver

    app = g.compile(checkpointer=SqliteSaver(conn))
    snap = app.get_state({"configurable": {"thread_id": "t", "checkpoint_id": checkpoint_id}})
    assert snap.values is not None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--window-events", type=int, default=200_000, help="decoded events the steady runner keeps")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    print(f"# {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="uok-tt-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        ps, head, turns = uok_log(work, args.steps)
        starts, run_ids = runs_by_entry(ps, head)
        print(
            f"# uok: {head:,} events, {turns:,} turns, {len(run_ids):,} runs, read models built ({time.perf_counter() - t:.1f} s)"
        )
        lg = None
        try:
            t = time.perf_counter()
            lg = langgraph_history(work, args.steps)
            print(f"# langgraph: {len(lg[2]):,} checkpoints ({time.perf_counter() - t:.1f} s)")
        except ImportError:
            print("# langgraph: not installed (pip install -e '.[bench]'), skipped")
        rows: dict[str, list[tuple[float, float]]] = {
            "uok run, cold (new runner)": [],
            "uok run, warm (one runner)": [],
            "uok whole system, cold": [],
            "langgraph get_state (new saver)": [],
        }
        warm = ProjectionRunner(ps, ps, registry.ALL)
        queries = []
        for _ in range(args.queries):  # interleaved, one query of each per round
            p = rng.randint(1, head)
            run = run_ids[max(bisect.bisect_right(starts, p) - 1, 0)]
            queries.append((p, run))
            rows["uok run, cold (new runner)"].append(timed(lambda: uok_run_query(ps, None, p, run)))
            rows["uok run, warm (one runner)"].append(timed(lambda: uok_run_query(ps, warm, p, run)))
            rows["uok whole system, cold"].append(timed(lambda: uok_whole_query(ps, p)))
            if lg is not None:
                cid = rng.choice(lg[2])
                rows["langgraph get_state (new saver)"].append(timed(lambda: langgraph_query(lg[0], lg[1], cid)))
        # steady state: a process that has read every window these queries need once (kept: --window-events)
        steady = ProjectionRunner(ps, ps, registry.ALL, window_events=args.window_events)
        for _ in range(2):  # the first pass reads the windows, the second indexes them (projections/asof.py)
            for p, run in queries:
                uok_run_query(ps, steady, p, run)
        rows["uok run, warm, steady (windows read before)"] = []
        rows["langgraph get_state, same pass as steady"] = []
        for p, run in queries:  # interleaved again with LangGraph's queries
            rows["uok run, warm, steady (windows read before)"].append(
                timed(lambda p=p, run=run: uok_run_query(ps, steady, p, run))
            )
            if lg is not None:
                cid = rng.choice(lg[2])
                rows["langgraph get_state, same pass as steady"].append(
                    timed(lambda cid=cid: langgraph_query(lg[0], lg[1], cid))
                )
        kept = steady._asof._window_total
        print(f"# steady: {kept:,} decoded events kept (~{kept * 800 / 1e6:.0f} MB at ~800 bytes each)")
        print("\n| query | wall median (ms) | wall p90 | wall max | CPU median (ms) | CPU vs langgraph |")
        print("|---|---:|---:|---:|---:|---:|")
        base = rows["langgraph get_state (new saver)"]
        base_cpu = statistics.median(c for _, c in base) if base else None
        for name, vals in rows.items():
            if not vals:
                continue
            walls, cpus = [w for w, _ in vals], [c for _, c in vals]
            ratio = f"{statistics.median(cpus) / base_cpu:.2f}x" if base_cpu else "-"
            print(
                f"| {name} | {statistics.median(walls):.2f} | {sorted(walls)[int(len(walls) * 0.9)]:.2f} "
                f"| {max(walls):.2f} | {statistics.median(cpus):.2f} | {ratio} |"
            )
        ps.store.close()
        if lg is not None:
            lg[1].close()


if __name__ == "__main__":
    main()
