"""The cost of starting a task: uok's executor against a bare
``subprocess.run``, interleaved in one process (issue 15, a cheap spawn).

Rows, each running ``true`` and waiting for it, round-robin, median:

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
    ex = CommandExecutor(root, logs=LogsDir(root / "logs"))
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
            "old spawn (preexec_fn PDEATHSIG, new session, temp dir)": old_spawn,
            "uok executor, a whole turn's process": executor(Path(tmp)),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for fn in rows.values():
            fn()  # warm-up
        for r in range(args.rounds):
            names = list(rows)
            names = names[r % len(names) :] + names[: r % len(names)]  # rotated: no row always first
            for name in names:
                t = time.perf_counter()
                rows[name]()
                times[name].append(time.perf_counter() - t)
    base = statistics.median(times["bare `subprocess.run`"])
    print("| spawn of `true` | median ms | p90 ms | vs bare |")
    print("|---|---:|---:|---:|")
    for name, ts in times.items():
        ts.sort()
        m, p90 = statistics.median(ts), ts[int(len(ts) * 0.9)]
        print(f"| {name} | {m * 1e3:.2f} | {p90 * 1e3:.2f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main()
