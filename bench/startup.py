"""Start-up against history: ``uok run`` of a 1-task plan and ``uok status``
right after it, on a fresh log and on the 1M-event kernel log, interleaved.

Each measurement is a whole ``python -m uok`` process (interpreter start,
imports, byte-compiled by a warm-up run first, opening the log, the
kernel restored from its snapshot and folded over what is new, the task,
the exit bookkeeping: read models caught up), timed by wall clock and by the child's CPU time
(``RUSAGE_CHILDREN``, user + system), which moves less than wall time on a
shared machine.

* **fresh**: a new log per round (the run creates it);
* **big**: a copy of ``bench/out/kernel-<N>k.db`` (bench/kernel_log.py),
  prepared ONCE by one ``uok run`` (which folds the whole history and
  writes the kernel snapshot) and ``uok projections rebuild`` (the read
  models: a run's end does not build them on a long log): the one-time
  cost, also reported, then measured round after round; each round adds a run's
  events, which is the "what is new" a start pays for.

The baseline of every ratio is the fresh log's figure of the same rounds.

    .venv/bin/python bench/startup.py              # = --events 1000000 --repeat 7
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.kernel_log import cached

PLAN = '[plan]\nid = "one"\n\n[[milestones]]\nid = "M"\n\n[[milestones.slices]]\nid = "S"\n\n'
PLAN += '[[milestones.slices.tasks]]\nid = "t"\ncommand = ["true"]\n'


# An installed uok imports byte-compiled modules; a shell with
# PYTHONDONTWRITEBYTECODE set would make every process compile ~100 modules
# (~0.4 s CPU, the same on both logs, flattening every ratio).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one ``python -m uok`` process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "uok", *args], cwd=cwd, env=ENV, capture_output=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"uok {' '.join(args)} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    src = cached(ROOT / "bench" / "out" / f"kernel-{args.events // 1000}k.db", args.events)
    work = Path(tempfile.mkdtemp(prefix="uok-startup-"))
    try:
        (work / "plan.toml").write_text(PLAN, encoding="utf-8")
        big = work / "big.db"
        shutil.copy(src, big)
        print(f"# {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; log {src.name}: {big.stat().st_size:,} bytes")
        wall, cpu = timed(["--db", str(big), "run", "plan.toml", "--quiet"], work)
        rw, rc = timed(["--db", str(big), "projections", "rebuild", "--quiet"], work)  # as the docstring says
        wall, cpu = wall + rw, cpu + rc
        print(
            f"# one-time preparation of the big log (fold from zero, snapshot, read models): {wall:.1f} s wall, {cpu:.1f} s CPU"
        )
        warm = work / "warm.db"  # byte-compile what run and status import, outside the measurements
        timed(["--db", str(warm), "run", "plan.toml", "--quiet"], work)
        timed(["--db", str(warm), "status"], work)
        rows: dict[str, list[tuple[float, float]]] = {
            k: [] for k in ("run fresh", "run big", "status fresh", "status big")
        }
        for r in range(args.repeat):
            fresh = work / f"fresh{r}.db"
            order = [("fresh", fresh), ("big", big)] if r % 2 == 0 else [("big", big), ("fresh", fresh)]
            for name, db in order:
                rows[f"run {name}"].append(timed(["--db", str(db), "run", "plan.toml", "--quiet"], work))
                rows[f"status {name}"].append(timed(["--db", str(db), "status"], work))
        print("\n| measure | wall median (s) | wall max | CPU median (s) | wall vs fresh | CPU vs fresh |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, vals in rows.items():
            walls, cpus = [w for w, _ in vals], [c for _, c in vals]
            base = rows[name.replace("big", "fresh")]
            bw, bc = statistics.median(w for w, _ in base), statistics.median(c for _, c in base)
            print(
                f"| {name} | {statistics.median(walls):.3f} | {max(walls):.3f} | {statistics.median(cpus):.3f}"
                f" | {statistics.median(walls) / bw:.2f}x | {statistics.median(cpus) / bc:.2f}x |"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
