"""What gates cost: kernel decisions, redaction, secret scanning, breaker folds.

    python bench/gates.py [--turns N] [--repeat R]

Every figure is the median of R runs and comes with a baseline measured in
the same run:

  kernel       N one-task turns driven through the pure kernel (no I/O):
               tasks with 2 gates (verification + security, both answered
               "pass") + the cost guard pricing one usage row, against the
               same tasks with no gates and no usage (baseline)
  redact       redact() over a 4 KiB stdout tail of ordinary test output,
               against the strict regexes alone (AWS key, private key, JWT)
  scan         the security gate's scan_files() over 20 files of 4 KiB,
               against reading the same files (baseline)
  breakers     folding a log of gate events (GateRequested, GateRun,
               BreakerTransitioned) with the breakers projection, against
               decoding the same events without folding them
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from uok.adapters.secrets import _STRICT, redact
from uok.adapters.secretscan import scan_files
from uok.domain import events as ev
from uok.domain.events import GateEvaluated, GateRequested
from uok.domain.kernel import Kernel
from uok.domain.log import codec
from uok.projections.breakers import BreakersProjection

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def plan(n: int, gates: bool) -> str:
    lines = ['[plan]\nid = "bench"\n[[milestones]]\nid = "M1"\n[[milestones.slices]]\nid = "S1"\n']
    for i in range(n):
        lines.append(
            f'[[milestones.slices.tasks]]\nid = "t{i}"\ncommand = ["true"]\ndepends_on = []\nretries = 0\n'
            + ('gates = ["verification", "security"]\n' if gates else "")
        )
    return "\n".join(lines)


def drive(n: int, gates: bool) -> float:
    """Seconds to drive n turns through the kernel (decisions only)."""
    k = Kernel()
    tick = iter(range(10**9))

    def at():
        return T0 + timedelta(milliseconds=next(tick))

    usage = (ev.ModelUsage(model="claude-sonnet-4-6", input_tokens=2000, output_tokens=300),) if gates else ()
    start = time.perf_counter()
    out = k.handle(
        ev.KernelEntered(
            run_id="r",
            at=at(),
            pid=1,
            plan_path="p",
            plan_source=plan(n, gates),
            workers=4,
            flags={"gates": {"verification": "verification", "security": "security"}, "max_iterations": 10**9},
        )
    )
    pending = [d for d in out if isinstance(d, ev.TurnStarted)]
    reqs: list[GateRequested] = []
    while pending or reqs:
        if reqs:
            r = reqs.pop()
            out = k.handle(
                GateEvaluated(
                    run_id="r",
                    at=at(),
                    turn_id=r.turn_id,
                    unit_id=r.unit_id,
                    gate_id=r.gate_id,
                    gate_type=r.gate_type,
                    attempt=r.attempt,
                    outcome="pass",
                )
            )
        else:
            t = pending.pop()
            out = k.handle(
                ev.ExecutionFinished(
                    run_id="r", at=at(), turn_id=t.turn_id, unit_id=t.unit_id, exit_code=0, duration_ms=1, usage=usage
                )
            )
        pending += [d for d in out if isinstance(d, ev.TurnStarted)]
        reqs += [d for d in out if isinstance(d, GateRequested)]
    assert k.exited
    return time.perf_counter() - start


TAIL = "\n".join(f"tests/test_mod{i % 7}.py::test_case_{i} PASSED [{i % 100:3d}%] in 0.{i % 10}2s" for i in range(90))[
    :4096
]


def strict_only(text: str) -> str:
    for _kind, pattern in _STRICT:
        text = pattern.sub("[REDACTED]", text)
    return text


def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def gate_log(n: int) -> list[tuple[str, bytes]]:
    """n gate rounds of a gate that fails 3 times in 4: the breaker moves."""
    from uok.domain.events import GateRun
    from uok.domain.policies import breaker as brk

    book, policy, out = brk.BreakerBook(), brk.BreakerPolicy(), []
    for i in range(n):
        now = T0 + timedelta(seconds=5 * i)
        rec = book.get("verification")
        evs = []
        moved = brk.tick(rec, policy, now)
        if moved:
            evs.append(moved)
            brk.apply(book, moved)
        ok, probe = brk.admit(rec, policy)
        turn = f"r:{i}"
        if not ok:
            evs.append(
                GateRun(
                    run_id="r",
                    at=now,
                    turn_id=turn,
                    unit_id="u",
                    gate_id="verification",
                    gate_type="v",
                    attempt=1,
                    max_attempts=1,
                    outcome="fail",
                    failure_class="policy",
                    short_circuited=True,
                    breaker_state=rec.state,
                )
            )
        else:
            req = GateRequested(
                run_id="r",
                at=now,
                turn_id=turn,
                unit_id="u",
                gate_id="verification",
                gate_type="v",
                attempt=1,
                probe=probe,
                breaker_state=rec.state,
            )
            brk.apply(book, req)
            outcome = "pass" if i % 4 == 0 else "fail"
            run = GateRun(
                run_id="r",
                at=now,
                turn_id=turn,
                unit_id="u",
                gate_id="verification",
                gate_type="v",
                attempt=1,
                max_attempts=2,
                outcome=outcome,
                failure_class="verification",
                breaker_state=rec.state,
            )
            evs += [req, run]
            brk.apply(book, run)
            moved = brk.on_result(rec, policy, outcome, now, was_probe=probe)
            if moved:
                evs.append(moved)
                brk.apply(book, moved)
        out += [codec.encode(e) for e in evs]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--turns", type=int, default=400)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, rep = args.turns, args.repeat
    med = statistics.median

    base = med(drive(n, False) for _ in range(rep))
    gated = med(drive(n, True) for _ in range(rep))
    print(
        f"kernel   {n} turns: no gates {base * 1e3:8.1f} ms ({base / n * 1e6:6.1f} µs/turn); "
        f"2 gates + cost guard {gated * 1e3:8.1f} ms ({gated / n * 1e6:6.1f} µs/turn); ratio {gated / base:.2f}x"
    )

    redact(TAIL)  # warm: import and configure detect-secrets once
    r_strict = med(timed(lambda: strict_only(TAIL), 200) for _ in range(rep))
    r_full = med(timed(lambda: redact(TAIL), 20) for _ in range(rep))
    print(
        f"redact   4 KiB tail: strict regexes {r_strict * 1e3:7.3f} ms; full redact() {r_full * 1e3:7.2f} ms; "
        f"ratio {r_full / r_strict:.0f}x"
    )

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        names = []
        for i in range(20):
            (root / f"f{i}.py").write_text(f"x = compute({i})  # ordinary code line\n" * 110)
            names.append(f"f{i}.py")
        s_read = med(timed(lambda: [(root / f).read_text() for f in names], 20) for _ in range(rep))
        s_scan = med(timed(lambda: scan_files(root, names), 3) for _ in range(rep))
        print(
            f"scan     20 files x 4 KiB: read {s_read * 1e3:7.2f} ms; scan_files {s_scan * 1e3:8.1f} ms "
            f"({s_scan / 20 * 1e3:.1f} ms/file); ratio {s_scan / s_read:.0f}x"
        )

    records = gate_log(20_000)
    decode = codec.decode

    def decode_only():
        for topic, payload in records:
            decode(topic, payload)

    proj = BreakersProjection()

    def fold_all():
        state = proj.initial()
        for pos, (topic, payload) in enumerate(records, 1):
            state = proj.apply(state, pos, decode(topic, payload))
        return state

    b_dec = med(timed(decode_only, 1) for _ in range(rep))
    b_fold = med(timed(fold_all, 1) for _ in range(rep))
    print(
        f"breakers {len(records)} gate events: decode {b_dec * 1e3:7.1f} ms ({len(records) / b_dec:,.0f}/s); "
        f"decode+fold {b_fold * 1e3:7.1f} ms ({len(records) / b_fold:,.0f}/s); ratio {b_fold / b_dec:.2f}x"
    )


if __name__ == "__main__":
    main()
