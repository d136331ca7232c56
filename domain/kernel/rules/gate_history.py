"""What gates did before, folded from every run in the log: each gate's
circuit breaker (:mod:`uok.domain.policies.breaker`, the very fold the
``breakers`` projection runs), the failure memory behind ``GateMemory``,
and the spend the cost guard judges (:mod:`uok.domain.policies.cost_guard`).
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.state import GateState, KernelState, MemoryEntry
from uok.domain.policies import breaker as brk

MEMORY_RUNS = 20  # most recent runs listed in a GateMemory


def fold_breaker(st: KernelState, e: ev.GateRun | ev.GateRequested | ev.BreakerTransitioned) -> None:
    brk.apply(st.gates.breakers, e)


def fold_memory(st: KernelState, e: ev.GateRun) -> None:
    """A non-passing final or retried result counts against its fingerprint."""
    if not e.fingerprint or e.outcome in ("pass", "skip"):
        return
    memory = st.gates.memory
    try:
        m = memory.get(e.fingerprint)
        if m is None:
            m = memory[e.fingerprint] = MemoryEntry(gate_id=e.gate_id, first_seen=e.at)
        m.count += 1
        m.last_seen = e.at
        if e.run_id and e.run_id not in m.runs:
            m.runs.append(e.run_id)
            del m.runs[:-MEMORY_RUNS]
    except Exception:  # a damaged history is dropped, never fatal: memory is an enrichment  # noqa: BLE001
        memory.pop(e.fingerprint, None)


def fold_costs(st: KernelState, e: ev.CostRecorded | ev.TurnFinished) -> None:
    st.gates.costs.apply(e)


def memory_for(gates: GateState, fp: str) -> ev.GateMemory | None:
    """Earlier failures with this fingerprint (None if there were none)."""
    m = gates.memory.get(fp)
    if m is None or m.count == 0:
        return None
    return ev.GateMemory(
        fingerprint=fp, count=m.count, first_seen=m.first_seen, last_seen=m.last_seen, runs=tuple(m.runs)
    )
