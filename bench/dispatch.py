"""Dispatch against plan size: the kernel's decision time per step with 500
and with 10,000 tasks, interleaved, pure (no I/O).

A step is one ``ExecutionFinished`` handled by ``Kernel.handle``: the unit
concludes, and the kernel decides what to dispatch next. Issue 15 wants the
cost of a step independent of the plan's size (ready and blocked sets kept
from transitions, not rescanned): per-step time at 10,000 tasks within
1.2x of the time at 500.

Two shapes: one **chain** (each task depends on the one before) and
**parallel** chains (10 slices run side by side, ``workers = 8``). The
baseline of each ratio is the 500-task plan of the same shape, measured in
the same rounds, alternating with the large one.

    .venv/bin/python bench/dispatch.py          # = --small 500 --large 10000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from uok.domain import events as ev
from uok.domain.kernel import Kernel

from bench.peers import chain_lengths, uok_plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def drive(tasks: int, chains: int) -> tuple[int, float]:
    """(steps, CPU seconds) to drive a plan of ``tasks`` tasks in ``chains``
    chains to its end through the kernel alone."""
    source = uok_plan(chain_lengths(tasks, chains))
    k = Kernel()
    tick = iter(range(10**12))

    def at() -> datetime:
        return T0 + timedelta(milliseconds=next(tick))

    out = k.handle(
        ev.KernelEntered(
            run_id="r",
            at=at(),
            pid=1,
            plan_path="plan.toml",
            plan_source=source,
            workers=min(chains, 8),
            flags={"max_iterations": 10**9},
        )
    )
    pending = [d for d in out if isinstance(d, ev.TurnStarted)]
    steps = 0
    start = time.process_time()
    while pending:
        t = pending.pop(0)
        out = k.handle(
            ev.ExecutionFinished(run_id="r", at=at(), turn_id=t.turn_id, unit_id=t.unit_id, exit_code=0, duration_ms=1)
        )
        steps += 1
        pending += [d for d in out if isinstance(d, ev.TurnStarted)]
    cpu = time.process_time() - start
    assert k.exited, "the plan did not finish"
    return steps, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--large", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("| shape | tasks | steps | µs/step (median CPU) | vs small |")
    print("|---|---:|---:|---:|---:|")
    for shape, chains in (("chain", 1), ("parallel", 10)):
        per: dict[int, list[float]] = {args.small: [], args.large: []}
        steps: dict[int, int] = {}
        for r in range(args.repeat):
            for n in (args.small, args.large) if r % 2 == 0 else (args.large, args.small):
                s, cpu = drive(n, chains)
                steps[n] = s
                per[n].append(cpu / s * 1e6)
        base = statistics.median(per[args.small])
        for n in (args.small, args.large):
            m = statistics.median(per[n])
            print(f"| {shape} | {n:,} | {steps[n]:,} | {m:,.0f} | {m / base:.2f}x |")


if __name__ == "__main__":
    main()
