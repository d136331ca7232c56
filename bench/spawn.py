"""The cost of starting a task: uok's executor against a bare
``subprocess.run``, interleaved in one process (issue 15, a cheap spawn).

Rows, each running ``true`` and waiting for it, round-robin: wall time (median,
p90) and the calling thread's CPU (mean of `time.thread_time`; the child's own CPU is
not counted):

* ``bare``: ``subprocess.run(["true"])``, the baseline;
* ``fast Popen``: ``Popen(process_group=0)`` with stdout/stderr pipes, what
  the executor's spawn now is (CPython's vfork path);
* ``old spawn``: the spawn the executor had before issue 15, reproduced: a
  ``preexec_fn`` setting ``PR_SET_PDEATHSIG`` (forces a full ``fork`` of
  the calling process), ``start_new_session``, and a temporary directory
  made and removed per attempt;
* ``uok executor``: ``CommandExecutor.execute`` of a task: the spawn plus
  everything a turn's process gets (feedback file, redacted output files
  with their SHA-256, usage and spawn files read back).

The parent's size matters for ``fork``: the bench first imports what
``uok run`` imports, so the old path copies a realistic page table.

    .venv/bin/python bench/spawn.py             # = --rounds 300
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from uok.adapters.executor import CommandExecutor
from uok.adapters.turnlogs import LogsDir
from uok.domain.plan import UnitNode

from uok import bootstrap  # noqa: F401  (the parent as large as uok run's)


def _die_with_parent() -> None:  # the old preexec_fn (runs in the child between fork and exec)
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def bare() -> None:
    subprocess.run(["true"], check=True)


def fast_popen() -> None:
    p = subprocess.Popen(
        ["true"], process_group=0, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    p.communicate()


def old_spawn() -> None:
    with tempfile.TemporaryDirectory(prefix="uok-usage-"):
        p = subprocess.Popen(
            ["true"],
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 (what is measured)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        p.communicate()


def executor(root: Path) -> Callable[[], None]:
    ex = CommandExecutor(root, logs=LogsDir(root / "logs", root))  # paths recorded relative, as in a run
    node = UnitNode(
        id="u", kind="task", unit_type="execute-task", milestone="M", slice="S", title="t", command=("true",)
    )
    turn = iter(range(1, 10**9))

    def run() -> None:
        out = ex.execute(node, run_id="r", turn_id=f"r:{next(turn)}", attempt=1)
        assert out.exit_code == 0, out

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="uok-bench-spawn-") as tmp:
        rows: dict[str, Callable[[], None]] = {
            "bare `subprocess.run`": bare,
            "fast Popen (process_group=0, pipes)": fast_popen,
            "uok executor, a whole turn's process": executor(Path(tmp)),
        }
        # the old spawn forks the whole process: every page this process writes afterwards is copied
        # on its first write, which would land on the CPU of whatever row runs next. It is timed in a
        # second pass, against the bare spawn of that pass.
        times, cpu = _rounds(rows, args.rounds)
        old_times, old_cpu = _rounds({"bare": bare, "old": old_spawn}, args.rounds)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"# {args.rounds} rounds, load {load}; CPU: this thread's (time.thread_time), the child's not counted")
    print("| spawn of `true` | median ms | p90 ms | vs bare | CPU mean ms | CPU vs bare |")
    print("|---|---:|---:|---:|---:|---:|")
    base, base_cpu = times["bare `subprocess.run`"], cpu["bare `subprocess.run`"]
    for name in rows:
        print(_row(name, times[name], cpu[name], base, base_cpu))
    name = "old spawn (preexec_fn PDEATHSIG, new session, temp dir; own pass)"
    print(_row(name, old_times["old"], old_cpu["old"], old_times["bare"], old_cpu["bare"]))


def _rounds(rows: dict[str, Callable[[], None]], rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each row once per round, the order rotated (no row always first): wall and CPU seconds."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}  # this thread's CPU (the child's excluded)
    for fn in rows.values():
        fn()  # warm-up
    for r in range(rounds):
        names = list(rows)
        names = names[r % len(names) :] + names[: r % len(names)]
        for name in names:
            t, c = time.perf_counter(), time.thread_time()
            rows[name]()
            cpu[name].append(time.thread_time() - c)
            times[name].append(time.perf_counter() - t)
    return times, cpu


def _row(name: str, ts: list[float], cs: list[float], base: list[float], base_cpu: list[float]) -> str:
    ts = sorted(ts)
    m, p90, c = statistics.median(ts), ts[int(len(ts) * 0.9)], statistics.mean(cs)
    b, bc = statistics.median(base), statistics.mean(base_cpu)
    return f"| {name} | {m * 1e3:.2f} | {p90 * 1e3:.2f} | {m / b:.2f}x | {c * 1e3:.3f} | {c / bc:.2f}x |"


if __name__ == "__main__":
    main()
