"""A large event log written by the real kernel, quickly: for the rebuild,
time-travel and replay benchmarks and for tests that need volume.

Unlike a log of made-up events, every decision here comes from
``uok.domain.kernel.Kernel.handle``, fed with synthetic observations (a clock
that advances by random steps, command exit codes, gate results, model
usage, the odd signal and the odd crash), so replaying any run of it must
find no divergence, which is what the replay benchmark measures.

Speed comes from three shortcuts, none of which changes a decision:

* one kernel object is reused across runs; between runs only the fields a
  fresh kernel starts empty (``run_id``, ``graph``, ``in_flight``,
  ``iteration`` …) are reset. Everything else is exactly what a fresh
  kernel folding the whole log would hold (the shell's ``fold_log``);
* records are encoded with the codec and appended straight to a
  ``SqliteEventStore`` (``synchronous=NORMAL``) in batches of 50,000;
* stream versions are counted in memory (the file is new).

    python bench/kernel_log.py OUT.db --events 1000000 [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.events import GateEvaluated, GateRequested
from uok.domain.kernel import Kernel
from uok.domain.log import codec
from uok.domain.log.store import NewRecord

GATES = {"tests": "command", "lint": "command"}
MODELS = ("claude-sonnet-4-6", "claude-haiku-4-5")
_PER_RUN_FIELDS = ("run_id", "pid", "graph", "nodes", "workers", "flags", "iteration", "in_flight", "exited")


def plan_source(plan_id: str, units: int, rng: random.Random) -> str:
    """Two milestones of two slices; chains with some explicit cross deps,
    shared files (so the conflict rule bites) and gates on some tasks."""
    out = [f'[plan]\nid = "{plan_id}"\n']
    per_slice = max(1, units // 4)
    n = 0
    for m in (1, 2):
        out.append(f'[[milestones]]\nid = "M{m}"\n')
        for s in (1, 2):
            out.append(f'[[milestones.slices]]\nid = "S{m}{s}"\n')
            for _ in range(per_slice):
                lines = [
                    f'[[milestones.slices.tasks]]\nid = "t{n:03d}"',
                    f'command = ["python3", "-c", "print({n})"]',
                    "timeout = 30",
                ]
                if n % 5 == 0:
                    lines.append(f'writes = ["out/shared{n % 3}.txt"]')
                if n % 3 == 0:
                    lines.append('gates = ["tests", "lint"]')
                elif n % 3 == 1:
                    lines.append('gates = ["tests"]')
                out.append("\n".join(lines) + "\n")
                n += 1
    return "\n".join(out)


class Generator:
    def __init__(self, store: SqliteEventStore, seed: int, units_per_plan: int, batch: int = 50_000):
        self.store, self.batch = store, batch
        self.rng = random.Random(seed)
        self.kernel = Kernel()
        self.versions: dict[str, int] = {}
        self.pending: list[NewRecord] = []
        self.written = 0
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.units_per_plan = units_per_plan
        self.plans = 0
        self.runs = 0

    def clock(self) -> datetime:
        self.now += timedelta(milliseconds=self.rng.randint(20, 4000))
        return self.now

    def record(self, events: list[ev.Event]) -> None:
        for e in events:
            stream = e.stream()
            v = self.versions[stream] = self.versions.get(stream, 0) + 1
            topic, payload = codec.encode(e)
            self.pending.append(NewRecord(stream=stream, version=v, topic=topic, payload=payload))
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.store.append(self.pending)
            self.written += len(self.pending)
            self.pending = []

    def count(self) -> int:
        return self.written + len(self.pending)

    def _fresh_run_fields(self) -> None:
        fresh = Kernel()
        for name in _PER_RUN_FIELDS:
            setattr(self.kernel.state, name, getattr(fresh.state, name))

    def step(self, obs: ev.Event) -> list[ev.Event]:
        out = self.kernel.handle(obs)
        self.record([obs, *out])
        return out

    def run_plan(self, plan_id: str, source: str) -> str | None:
        """One run; returns its run id if it crashed (left open)."""
        rng, k = self.rng, self.kernel
        self._fresh_run_fields()
        self.runs += 1
        run_id = f"r{self.runs:06d}"
        probes = tuple(ev.PidProbe(run_id=r.run_id, pid=r.pid, alive=False) for r in k.open_runs())
        entered = ev.KernelEntered(
            run_id=run_id,
            at=self.clock(),
            pid=10_000 + self.runs,
            host="bench",
            plan_path=f"plans/{plan_id}.toml",
            plan_source=source,
            workers=rng.choice((2, 3, 4)),
            flags={"gates": GATES},
            probes=probes,
        )
        work: dict[tuple[str, str, int], ev.Event] = {}
        self._track(work, self.step(entered))
        crash_at = rng.randint(3, 60) if rng.random() < 0.04 else -1
        signal_at = rng.randint(3, 60) if rng.random() < 0.04 else -1
        steps = 0
        while not k.exited and work:
            steps += 1
            if steps == crash_at:
                return run_id  # the process "died": no exit recorded
            if steps == signal_at:
                self._track(work, self.step(ev.SignalReceived(run_id=run_id, at=self.clock(), signal="SIGTERM")))
                break
            key = rng.choice(list(work)[:4])  # the first few in flight finish in random order
            req = work.pop(key)
            self._track(work, self.step(self._observe(run_id, req)))
        return None

    def _observe(self, run_id: str, req: ev.Event) -> ev.Event:
        rng, at = self.rng, self.clock()
        if isinstance(req, GateRequested):
            fail = rng.random() < 0.08
            return GateEvaluated(
                run_id=run_id,
                at=at,
                turn_id=req.turn_id,
                unit_id=req.unit_id,
                gate_id=req.gate_id,
                gate_type=req.gate_type,
                attempt=req.attempt,
                outcome="fail" if fail else "pass",
                failure_class="verification" if fail else "none",
                rationale="2 tests failed in test_api.py" if fail else "",
                duration_ms=rng.randint(50, 3000),
            )
        roll = rng.random()
        usage = (
            (
                ev.ModelUsage(
                    model=rng.choice(MODELS), input_tokens=rng.randint(200, 3000), output_tokens=rng.randint(50, 800)
                ),
            )
            if rng.random() < 0.5
            else ()
        )
        return ev.ExecutionFinished(
            run_id=run_id,
            at=at,
            turn_id=req.turn_id,
            unit_id=req.unit_id,
            exit_code=1 if roll < 0.07 else 0,
            duration_ms=rng.randint(100, 30_000),
            timed_out=0.07 <= roll < 0.075,
            stdout_tail="ok\n",
            stderr_tail="AssertionError: expected 3\n" if roll < 0.07 else "",
            usage=usage,
        )

    def _track(self, work: dict, decisions: list[ev.Event]) -> None:
        for d in decisions:
            if isinstance(d, ev.TurnStarted):
                node = self.kernel.state.nodes.get(d.unit_id)
                if node is not None and node.command is not None:
                    work[(d.turn_id, "", 0)] = d
            elif isinstance(d, GateRequested):
                work[(d.turn_id, d.gate_id, d.attempt)] = d
            elif isinstance(d, ev.TurnFinished):
                for key in [key for key in work if key[0] == d.turn_id]:
                    del work[key]

    def generate(self, events: int) -> None:
        rng = self.rng
        while self.count() < events:
            self.plans += 1
            plan_id = f"p{self.plans:05d}"
            source = plan_source(plan_id, self.units_per_plan, rng)
            for _attempt in range(6):  # re-run until the plan's run exits (crash/signal → resume)
                crashed = self.run_plan(plan_id, source)
                if crashed is None and self.kernel.exited:
                    break
        self.flush()


def generate(path: Path, events: int, *, seed: int = 7, units_per_plan: int = 40) -> int:
    """Write a log of at least ``events`` events to a new file ``path``; returns the count."""
    if path.exists():
        raise FileExistsError(path)
    store = SqliteEventStore(path, synchronous="NORMAL")
    try:
        g = Generator(store, seed, units_per_plan)
        g.generate(events)
        return g.count()
    finally:
        store.close()


def cached(path: Path, events: int, *, seed: int = 7) -> Path:
    """``path`` if it already holds a generated log, else generate it."""
    if not path.exists():
        tmp = path.with_name(path.name + ".partial")
        for p in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm")):
            p.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        generate(tmp, events, seed=seed)
        tmp.rename(path)
        for suffix in ("-wal", "-shm"):
            tmp.with_name(tmp.name + suffix).unlink(missing_ok=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    t = time.perf_counter()
    n = generate(args.out, args.events, seed=args.seed)
    print(f"wrote {n:,} events to {args.out} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
