"""Plan content stored once (issue 11, item 6): how much the log grows per
run of the same plan.

Writes a plan of about ``--mb`` MB (``--tasks`` tasks with long titles, so
the text and the compiled graph are both about that size), runs it
``--runs`` times through the real CLI into one log, then once more after
changing one title, and prints per run: the payload bytes the run's events
hold, the growth of the log's files (main file + WAL, after each run's
checkpoint) and the run's wall time.

Before content addressing every run stored what the first one stores now
(each run held the plan's text and graph), so run 1's figure is also the
"before" figure of every later run.

    .venv/bin/python bench/plan_storage.py            # = --mb 5 --tasks 10 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write_plan(path: Path, mb: float, tasks: int, salt: str = "") -> None:
    per = int(mb * 1_000_000 / tasks)
    body = '[plan]\nid = "big"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
    for i in range(tasks):
        title = (f"task {i} {salt} " + "lorem ipsum " * (per // 12 + 1))[:per]
        body += f'[[milestones.slices.tasks]]\nid = "t{i}"\ntitle = "{title}"\ncommand = ["true"]\n'
    path.write_text(body)


def log_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def payload_by_run(db: Path) -> dict[str, int]:
    sys.path.insert(0, str(ROOT))
    from uok.adapters.stores import open_event_store

    store = open_event_store(db)
    out: dict[str, int] = {}
    try:
        for r in store.read(0):
            run = json.loads(bytes(r.payload)).get("run_id", "")
            out[run] = out.get(run, 0) + len(r.payload)
    finally:
        store.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5.0)
    ap.add_argument("--tasks", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("UOK_DB", None)
    with tempfile.TemporaryDirectory() as tmp:
        plan, db = Path(tmp) / "plan.toml", Path(tmp) / "events.db"
        write_plan(plan, a.mb, a.tasks)
        print(f"plan: {plan.stat().st_size:,} bytes, {a.tasks} tasks")
        print(f"{'run':>4} {'plan':>8} {'payload bytes':>14} {'log growth':>12} {'seconds':>8}")
        for i in range(a.runs + 1):
            if i == a.runs:
                write_plan(plan, a.mb, a.tasks, salt="changed")
            before, t0 = log_bytes(db), time.perf_counter()
            r = subprocess.run(
                [sys.executable, "-m", "uok", "run", str(plan), "--db", str(db), "--quiet"],
                env=env,
                capture_output=True,
                text=True,
            )
            took = time.perf_counter() - t0
            if r.returncode != 0:
                raise SystemExit(f"run {i + 1} failed: {r.stderr}")
            run_id = r.stdout.split()[1].rstrip(":")
            growth = log_bytes(db) - before
            print(
                f"{i + 1:>4} {'changed' if i == a.runs else 'same':>8} "
                f"{payload_by_run(db).get(run_id, 0):>14,} {growth:>12,} {took:>8.2f}"
            )


if __name__ == "__main__":
    main()
