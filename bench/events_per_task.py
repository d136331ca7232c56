"""Events and bytes per task of a uok run, by event type (issue 15 item 6).

A chain (or ``--chains`` parallel chains) of ``--tasks`` tasks running
``true``, built by ``uok.bootstrap`` as ``uok run`` builds it (default
flags, ``synchronous=FULL``, WAL), the plan of bench/peers.py. Prints per
task, by event topic: events, payload bytes, and the bytes of the events
table's rows (payload, stream, topic, hash and the integers, as SQLite
stores them: ``sum(pgsize)`` of the table over its rows when the
``dbstat`` virtual table is there), then the totals. Counts do not depend
on the machine's load; run it twice and they agree.

Usage (from the repository root)::

    .venv/bin/python bench/events_per_task.py                 # 200 tasks, one chain
    .venv/bin/python bench/events_per_task.py --tasks 200 --chains 10
    .venv/bin/python bench/events_per_task.py --json          # the figures as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # the same plan as the peer benchmark


def measure(tasks: int, chains: int = 1, work: Path | None = None) -> dict:
    """Run the plan on a fresh log and count what it wrote; the figures are per task."""
    work = work or Path(tempfile.mkdtemp(prefix="uok-events-"))
    log, runner = peers.uok_runner(work, peers.chain_lengths(tasks, chains))
    result = runner.run()
    conn = log.store.connection
    rows = conn.execute(
        "SELECT topic, count(*), sum(length(payload)), "
        "sum(length(payload) + length(stream) + length(topic) + length(hash) + 3 * 8) "
        "FROM events GROUP BY topic ORDER BY 3 DESC"
    ).fetchall()
    try:
        table = conn.execute("SELECT sum(pgsize) FROM dbstat WHERE name = 'events'").fetchall()[0][0]
    except Exception:  # noqa: BLE001  (no dbstat in this SQLite build)
        table = None
    log.store.close()
    if result.exit_code != 0:
        raise SystemExit(f"uok run failed: {result}")
    by_topic = {t: {"events": n / tasks, "payload": p / tasks, "row": r / tasks} for t, n, p, r in rows}
    return {
        "tasks": tasks,
        "chains": chains,
        "by_topic": by_topic,
        "events": sum(v["events"] for v in by_topic.values()),
        "payload": sum(v["payload"] for v in by_topic.values()),
        "row": sum(v["row"] for v in by_topic.values()),
        "table": table / tasks if table else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=200)
    ap.add_argument("--chains", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    m = measure(args.tasks, args.chains)
    if args.json:
        print(json.dumps(m, indent=1))
        return
    print(f"# {args.tasks} tasks in {args.chains} chain(s); per task:")
    print(f"{'topic':32s} {'events':>7s} {'payload B':>10s} {'row B':>8s}")
    for topic, v in m["by_topic"].items():
        print(f"{topic:32s} {v['events']:7.2f} {v['payload']:10.1f} {v['row']:8.1f}")
    print(f"{'total':32s} {m['events']:7.2f} {m['payload']:10.1f} {m['row']:8.1f}")
    if m["table"]:
        print(f"events table pages (dbstat): {m['table']:.0f} B per task")


if __name__ == "__main__":
    main()
