"""Time travel in one process: uok's state as of a past position against
LangGraph's checkpointer reading a past checkpoint, on 10,000-step
histories, measured in the same run, queries interleaved.

* **uok**: a log of about ``--steps`` turns written by the real kernel
  (bench/kernel_log.py: 40-unit plans, gates, priced usage, failures,
  crashes and recoveries), its read models built (snapshots every 10,000
  events, as ``uok`` keeps them). One query = what ``uok state --at P``
  computes in process: a NEW ``ProjectionRunner`` (nothing decoded
  cached: cold) materialising every projection as of P, then
  ``system_view`` (the printable picture: runs, every unit, turns, gates,
  breakers, costs). P is drawn uniformly over the log.
* **langgraph** (if installed, the ``bench`` extra): a one-node looping
  ``StateGraph`` run ``--steps`` steps with ``SqliteSaver``
  (``durability="sync"``, one checkpoint per step). One query = a NEW
  ``SqliteSaver`` on the open connection and the compiled graph's
  ``get_state`` at a checkpoint drawn uniformly among the thread's.

What each side materialises differs: uok the whole system as of P (every
run and unit of the log), LangGraph one thread's channel values (here a
counter). The figures say what each costs, not that the work is equal.

    .venv/bin/python bench/timetravel.py        # = --steps 10000 --queries 100
"""

from __future__ import annotations

import argparse
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
from uok.replay.timetravel import system_view

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


def uok_query(ps: SqliteProjectionStore, position: int) -> float:
    t = time.perf_counter()
    runner = ProjectionRunner(ps, ps, registry.ALL)
    system_view(runner.state_at(position), position)
    return (time.perf_counter() - t) * 1000


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


def langgraph_query(g, conn, checkpoint_id: str) -> float:
    from langgraph.checkpoint.sqlite import SqliteSaver

    t = time.perf_counter()
    app = g.compile(checkpointer=SqliteSaver(conn))
    snap = app.get_state({"configurable": {"thread_id": "t", "checkpoint_id": checkpoint_id}})
    assert snap.values is not None
    return (time.perf_counter() - t) * 1000


def summary(ms: list[float]) -> str:
    return f"median {statistics.median(ms):.2f} ms, p90 {sorted(ms)[int(len(ms) * 0.9)]:.2f}, max {max(ms):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="uok-tt-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        ps, head, turns = uok_log(work, args.steps)
        print(f"# uok: {head:,} events, {turns:,} turns, read models built ({time.perf_counter() - t:.1f} s)")
        lg = None
        try:
            t = time.perf_counter()
            lg = langgraph_history(work, args.steps)
            print(f"# langgraph: {len(lg[2]):,} checkpoints ({time.perf_counter() - t:.1f} s)")
        except ImportError:
            print("# langgraph: not installed (pip install -e '.[bench]'), skipped")
        uok_ms, lg_ms = [], []
        for _ in range(args.queries):  # interleaved, one query of each per round
            uok_ms.append(uok_query(ps, rng.randint(1, head)))
            if lg is not None:
                lg_ms.append(langgraph_query(lg[0], lg[1], rng.choice(lg[2])))
        print(f"uok state at P (new runner + system_view): {summary(uok_ms)}")
        if lg_ms:
            print(f"langgraph get_state at a checkpoint (new saver): {summary(lg_ms)}")
            ratio = statistics.median(uok_ms) / statistics.median(lg_ms)
            print(f"uok / langgraph, median: {ratio:.2f}x; max: {max(uok_ms) / max(lg_ms):.2f}x")
        ps.store.close()
        if lg is not None:
            lg[1].close()


if __name__ == "__main__":
    main()
