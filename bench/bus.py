"""Message bus, writer tokens and per-turn closeout: throughput against raw baselines.

Every figure is measured in this run, on fresh files in a temp dir, next to
its baseline:

* send: ``MessageBus.send`` (uuid, msgspec encode, pinned version 1) vs a
  raw ``SqliteEventStore.append`` of the same bytes (one record per
  transaction, both at the same ``synchronous``);
* send_once duplicate: a second ``send_once`` of an existing key (a stream
  lookup, nothing written) vs ``send``;
* inbox catch-up: a fresh ``MessageBus.refresh`` folding N messages vs
  reading + decoding the same records without folding;
* writer tokens: ``acquire`` + ``release`` pairs vs two raw appends;
* turn bookkeeping: a plan of no-op units through ``KernelRunner`` (built by ``uok.bootstrap.build_runner``) with
  writer tokens and turn closeout vs the same runner with both disabled.

Usage: .venv/bin/python bench/bus.py [--messages N] [--synchronous FULL|NORMAL]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from uok.adapters import observer as observer_mod
from uok.adapters.bus import MessageBus
from uok.adapters.eventlog import EventLog
from uok.adapters.observer import TurnHooks
from uok.adapters.sqlite_store import SqliteEventStore
from uok.adapters.writer import WriterTokens
from uok.domain.events import MessageSent
from uok.domain.log import codec
from uok.domain.log.store import NewRecord

from uok import bootstrap

PAYLOAD = {"unit": "build-a", "attempt": 1, "note": "x" * 120}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best(fn, repeat: int) -> float:
    return min(timed(fn) for _ in range(repeat))


def bench_send(tmp: Path, n: int, sync: str, repeat: int) -> dict[str, float]:
    from datetime import UTC, datetime

    sample = MessageSent(
        at=datetime.now(UTC), message_id="0" * 32, sender="planner", recipient="worker", topic="task", payload=PAYLOAD
    )
    topic, payload = codec.encode(sample)
    runs: dict[str, list[float]] = {"raw": [], "send": [], "dup": [], "fold": [], "decode": []}
    for r in range(repeat):
        raw = SqliteEventStore(tmp / f"raw{r}.db", synchronous=sync)
        t = timed(
            lambda: [
                raw.append([NewRecord(stream=f"msg:{i}", version=1, topic=topic, payload=payload)]) for i in range(n)
            ]
        )
        runs["raw"].append(n / t)
        raw.close()
        store = SqliteEventStore(tmp / f"bus{r}.db", synchronous=sync)
        bus = MessageBus(EventLog(store))
        runs["send"].append(n / timed(lambda: [bus.send("planner", "worker", "task", PAYLOAD) for _ in range(n)]))
        bus.send_once("planner", "worker", "task", PAYLOAD, "dup")
        runs["dup"].append(
            n / timed(lambda: [bus.send_once("planner", "worker", "task", PAYLOAD, "dup") for _ in range(n)])
        )
        runs["fold"].append(n / timed(lambda: MessageBus(EventLog(store)).refresh()))
        runs["decode"].append(
            n / timed(lambda: [codec.decode(x.topic, x.payload) for x in store.read(0, topics=(topic,))])
        )
        store.close()
    return {k: statistics.median(v) for k, v in runs.items()}


def bench_tokens(tmp: Path, n: int, sync: str, repeat: int) -> tuple[float, float]:
    from datetime import UTC, datetime

    from uok.domain.events import WriterTokenAcquired

    sample = WriterTokenAcquired(at=datetime.now(UTC), token_id="0" * 32, turn_id="r:1", epoch=1, sequence=1)
    topic, payload = codec.encode(sample)
    pairs, raw = [], []
    for r in range(repeat):
        store = SqliteEventStore(tmp / f"tok{r}.db", synchronous=sync)
        w = WriterTokens(EventLog(store))
        pairs.append(n / timed(lambda: [w.release(w.acquire(f"r:{i}")) for i in range(n)]))
        store.close()
        base = SqliteEventStore(tmp / f"tokraw{r}.db", synchronous=sync)
        raw.append(
            n
            / timed(
                lambda: [
                    base.append([NewRecord(stream="writer", version=v, topic=topic, payload=payload)])
                    for v in range(1, 2 * n + 1)
                ]
            )
        )
        base.close()
    return statistics.median(pairs), statistics.median(raw)


def bench_turns(tmp: Path, units: int, sync: str, repeat: int) -> tuple[float, float]:
    plan = tmp / "noop.toml"
    plan.write_text(
        '[plan]\nid = "noop"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n'
        + "".join(f'[[milestones.slices.tasks]]\nid = "t{i}"\n' for i in range(units))
    )
    real_build = observer_mod.build_turn_hooks

    def one(r: int, bookkeeping: bool) -> float:
        store = SqliteEventStore(tmp / f"turns{r}{bookkeeping}.db", synchronous=sync)
        flags = {} if bookkeeping else {"turn_closeout": False}
        observer_mod.build_turn_hooks = real_build if bookkeeping else (lambda **_kw: TurnHooks())
        try:
            runner = bootstrap.build_runner(EventLog(store), plan, workers=1, flags=flags)
            t = timed(runner.run)
        finally:
            observer_mod.build_turn_hooks = real_build
            store.close()
        return (units + 1) / t  # + the slice's completion unit

    with_ = statistics.median(one(r, True) for r in range(repeat))
    without = statistics.median(one(r, False) for r in range(repeat))
    return with_, without


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--units", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="NORMAL")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="uok-bench-bus-") as d:
        tmp = Path(d)
        s = bench_send(tmp, a.messages, a.synchronous, a.repeat)
        pairs, raw_pairs = bench_tokens(tmp, a.tokens, a.synchronous, a.repeat)
        turns_with, turns_without = bench_turns(tmp, a.units, a.synchronous, a.repeat)
    print(f"synchronous={a.synchronous}, median of {a.repeat} runs, one record per transaction")
    print("| measure | n | per second | baseline (same run) | ratio |")
    print("|---|---:|---:|---|---:|")
    print(
        f"| bus send | {a.messages:,} | {s['send']:,.0f} msg/s | raw store append {s['raw']:,.0f}/s | {s['send'] / s['raw']:.2f}x |"
    )
    print(
        f"| send_once, duplicate key (no write) | {a.messages:,} | {s['dup']:,.0f} calls/s | bus send | {s['dup'] / s['send']:.2f}x |"
    )
    print(
        f"| inbox catch-up (fold from 0) | {a.messages:,} | {s['fold']:,.0f} msg/s | read+decode only {s['decode']:,.0f}/s | {s['fold'] / s['decode']:.2f}x |"
    )
    print(
        f"| writer token acquire+release | {a.tokens:,} | {pairs:,.0f} pairs/s | 2 raw appends {raw_pairs:,.0f} pairs/s | {pairs / raw_pairs:.2f}x |"
    )
    print(
        f"| no-op turns, tokens + closeout | {a.units + 1:,} | {turns_with:,.0f} turns/s | same runner without {turns_without:,.0f}/s | {turns_with / turns_without:.2f}x |"
    )


if __name__ == "__main__":
    main()
