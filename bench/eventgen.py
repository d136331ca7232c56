"""A realistic synthetic event log, quickly: for benchmarks and tests.

Real runs take seconds per handful of events; the analytics benchmark needs
a million. This module plays the *shape* of many runs (kernel enter, plan
compiled, each unit's lifecycle with its turn, gate attempts with the odd
failure and retry, priced usage, breaker trips, bus messages, kernel exit)
with the real event Structs, encodes them with :mod:`uok.domain.log.codec` and
appends them through :class:`uok.adapters.sqlite_store.SqliteEventStore` in big
batches, so hashes, positions and stream versions are exactly what the
kernel would have written. Deterministic for a given ``seed``.

    python bench/eventgen.py OUT.db --events 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uok.adapters.sqlite_store import SqliteEventStore
from uok.domain import events as ev
from uok.domain.log import codec
from uok.domain.log.store import NewRecord
from uok.domain.plan import compile_plan

GATES = ("tests", "lint", "secrets", "typecheck")
MODELS = ("claude-sonnet", "claude-haiku", "gpt-small")
UNITS_PER_RUN = 40


def _plan_source(n: int) -> str:
    lines = ['[plan]\nid = "bench"\n', '[[milestones]]\nid = "M1"\n', '[[milestones.slices]]\nid = "S1"\n']
    for i in range(n):
        lines.append(
            f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["python3", "-c", "print({i})"]\n'
            f'gates = ["tests", "lint"]\ntimeout = 30\n'
        )
    return "\n".join(lines)


_PLAN: list = []


def _plan():
    if not _PLAN:
        source = _plan_source(UNITS_PER_RUN)
        _PLAN.append((source, compile_plan(source, filename="bench.toml")))
    return _PLAN[0]


def run_events(run_no: int, rng: random.Random, start: datetime) -> Iterator[ev.Event]:
    """The events of one simulated run (about 16 per unit)."""
    run_id = f"r{run_no:06d}"
    clock = [start]

    def at() -> datetime:
        clock[0] += timedelta(milliseconds=rng.randint(1, 400))
        return clock[0]

    source, graph = _plan()
    plan_id = f"p{run_no % 50}"
    yield ev.KernelEntered(
        run_id=run_id,
        at=at(),
        pid=10000 + run_no,
        host="bench",
        plan_path="bench.toml",
        plan_source=source,
        workers=2,
        flags={"bench": True},
    )
    yield ev.PlanCompiled(run_id=run_id, at=at(), plan_id=graph.plan_id, graph=graph)
    completed = failed = iteration = 0
    for i, node in enumerate(graph.nodes):
        unit = node.id
        common = {"run_id": run_id, "plan_id": plan_id, "unit_id": unit}
        yield ev.UnitTransitioned(**common, at=at(), from_state="", to_state="queued", attempt=0, dispatches=0)
        attempt = 0
        while True:
            attempt += 1
            iteration += 1
            turn = f"{run_id}:{iteration}"  # the kernel's turn ids: one per dispatch
            yield ev.UnitTransitioned(
                **common,
                at=at(),
                from_state="queued",
                to_state="claimed",
                attempt=attempt,
                dispatches=attempt,
                turn_id=turn,
            )
            t0 = at()
            yield ev.TurnStarted(
                run_id=run_id,
                at=t0,
                turn_id=turn,
                iteration=iteration,
                unit_id=unit,
                unit_type=node.unit_type,
                attempt=attempt,
            )
            yield ev.UnitTransitioned(
                **common,
                at=at(),
                from_state="claimed",
                to_state="running",
                attempt=attempt,
                dispatches=attempt,
                turn_id=turn,
            )
            yield ev.PhaseResult(
                run_id=run_id, at=at(), turn_id=turn, phase="dispatch", action="dispatched", data={"attempt": attempt}
            )
            exit_code = 0 if rng.random() > 0.05 else 1
            usage = (
                ev.ModelUsage(
                    model=rng.choice(MODELS), input_tokens=rng.randint(100, 9000), output_tokens=rng.randint(10, 2000)
                ),
            )
            yield ev.ExecutionFinished(
                run_id=run_id,
                at=at(),
                turn_id=turn,
                unit_id=unit,
                exit_code=exit_code,
                duration_ms=rng.randint(50, 30000),
                stdout_tail=f"unit {unit} done\n" * 3,
                usage=usage,
            )
            for u in usage:
                yield ev.CostRecorded(
                    run_id=run_id,
                    at=at(),
                    turn_id=turn,
                    unit_id=unit,
                    model=u.model,
                    input_tokens=u.input_tokens,
                    output_tokens=u.output_tokens,
                    cost_usd=round((u.input_tokens * 3 + u.output_tokens * 15) / 1e6, 6),
                    plan_id=plan_id,
                )
            ok = exit_code == 0
            if ok:
                for gate in node.gates:
                    gate_attempt = 0
                    while True:
                        gate_attempt += 1
                        outcome = "pass" if rng.random() > 0.1 else "fail"
                        final = outcome if outcome == "pass" or gate_attempt == 2 else "retry"
                        dur = int(rng.lognormvariate(5, 1))
                        yield ev.GateEvaluated(
                            run_id=run_id,
                            at=at(),
                            turn_id=turn,
                            unit_id=unit,
                            gate_id=gate,
                            gate_type="command",
                            attempt=gate_attempt,
                            outcome=outcome,
                            failure_class="none" if outcome == "pass" else "verification",
                            duration_ms=dur,
                        )
                        yield ev.GateRun(
                            run_id=run_id,
                            at=at(),
                            turn_id=turn,
                            unit_id=unit,
                            gate_id=gate,
                            gate_type="command",
                            attempt=gate_attempt,
                            max_attempts=2,
                            outcome=final,
                            failure_class="none" if outcome == "pass" else "verification",
                            retryable=final == "retry",
                            duration_ms=dur,
                            breaker_state="closed",
                        )
                        if final != "retry":
                            break
                    if final == "fail":
                        ok = False
                        if rng.random() < 0.2:
                            yield ev.BreakerTransitioned(
                                run_id=run_id,
                                at=at(),
                                gate_id=gate,
                                from_state="closed",
                                to_state="open",
                                streak=3,
                                consecutive_failures=3,
                                reason="3 consecutive failures",
                            )
                        break
            state = "completed" if ok else "failed"
            yield ev.PhaseResult(run_id=run_id, at=at(), turn_id=turn, phase="finalize", action=state)
            yield ev.TurnFinished(
                run_id=run_id,
                at=at(),
                turn_id=turn,
                unit_id=unit,
                status="completed" if ok else "failed",
                started_at=t0,
            )
            yield ev.UnitTransitioned(
                **common,
                at=at(),
                from_state="running",
                to_state=state,
                attempt=attempt,
                dispatches=attempt,
                turn_id=turn,
            )
            if ok or attempt >= 2:
                break
            yield ev.UnitTransitioned(
                **common,
                at=at(),
                from_state="failed",
                to_state="queued",
                attempt=attempt,
                dispatches=attempt,
                reason="retry",
            )
        yield ev.UnitTransitioned(
            **common, at=at(), from_state=state, to_state="notified", attempt=attempt, dispatches=attempt
        )
        completed += ok
        failed += not ok
        if rng.random() < 0.1:
            mid = f"m{run_no}-{i}"
            yield ev.MessageSent(
                run_id=run_id,
                at=at(),
                message_id=mid,
                sender=f"worker-{i % 4}",
                recipient="observer",
                topic="progress",
                payload={"unit": unit, "ok": ok},
            )
            if rng.random() < 0.7:
                yield ev.MessageRead(run_id=run_id, at=at(), message_id=mid, reader="observer")
    yield ev.KernelExited(
        run_id=run_id, at=at(), status="ok", pid=10000 + run_no, units_completed=completed, units_failed=failed
    )


def generate(n_events: int, seed: int = 7) -> Iterator[ev.Event]:
    """At least ``n_events`` events (whole runs), deterministic for ``seed``."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    emitted = run_no = 0
    while emitted < n_events:
        run_no += 1
        for e in run_events(run_no, rng, start + timedelta(hours=run_no)):
            emitted += 1
            yield e


def fill(store: SqliteEventStore, n_events: int, *, seed: int = 7, batch: int = 10_000) -> int:
    """Append ``n_events`` generated events (exactly) to ``store``; returns the head position."""
    versions: dict[str, int] = {}
    fresh = store.head()[0] == 0  # an empty log: every stream starts at version 1
    pending: list[NewRecord] = []
    encode = codec.encode
    for count, e in enumerate(generate(n_events, seed), start=1):
        stream = e.stream()
        if stream not in versions:
            versions[stream] = 0 if fresh else store.stream_version(stream)
        v = versions[stream] = versions[stream] + 1
        topic, payload = encode(e)
        pending.append(NewRecord(stream=stream, version=v, topic=topic, payload=payload))
        if len(pending) >= batch:
            store.append(pending)
            pending = []
        if count >= n_events:
            break
    if pending:
        store.append(pending)
    return store.head()[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    if a.out.exists():
        p.error(f"{a.out} exists")
    t = time.perf_counter()
    with SqliteEventStore(a.out, synchronous="NORMAL") as store:
        head = fill(store, a.events, seed=a.seed)
    print(f"{head:,} events in {time.perf_counter() - t:.1f} s -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
