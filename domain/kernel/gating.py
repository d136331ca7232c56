"""The gate runner as pure decisions (behaviour §2), plugged into the kernel.

A turn whose command succeeded is not done yet: the gates its task lists
run first, in order, and the unit's outcome follows them. Executing a gate
is a side effect, so the kernel only *decides*:

1. the cost guard prices the turn's reported usage (``CostRecorded``) and
   judges it (``GateRun`` ``cost-guard``); a violation fails the unit with
   failure class ``policy`` and no retry (``domain/policies/cost_guard.py``);
2. for each listed gate, in order:

   * disabled by config → ``GateRun`` ``skip``;
   * not registered (``KernelEntered.flags["gates"]`` lists what the shell
     can execute) → ``GateRun`` ``manual-attention``/``unknown``,
     "Gate <id> not registered": fail-closed, the unit is ``blocked``;
   * its breaker refuses the call (``domain/policies/breaker.py``; time-based
     transitions are applied first, at the observation's time) →
     short-circuited ``GateRun`` ``fail``/``policy``, "circuit open until …";
   * otherwise ``GateRequested`` attempt N; the shell runs it and answers
     with ``GateEvaluated``, which :func:`on_evaluated` judges with the retry
     matrix (``domain/gates.judge``) into a ``GateRun`` (``retry`` → request
     attempt N+1), then feeds the final result to the breaker.

3. all gates pass (or skip) → the unit completes; a final ``fail`` → the
   unit fails with the gate's failure class (its own retry budget applies,
   except for ``policy``); ``manual-attention`` → the unit is ``blocked``.

A non-pass ``GateRun`` carries a fingerprint and, when the same gate failed
the same way before, a ``GateMemory`` folded from the earlier ``GateRun``
events (memory enrichment). Everything here is a function of the folded log
and the observation being handled, so replay reproduces it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from uok.domain import events as ev
from uok.domain.config import Flags, recorded_flags
from uok.domain.events import (
    BreakerTransitioned,
    CostRecorded,
    Finding,
    GateEvaluated,
    GateMemory,
    GateRequested,
    GateRun,
)
from uok.domain.policies import breaker as brk
from uok.domain.policies import cost_guard
from uok.domain.policies.costs import CostTable
from uok.domain.policies.gates import NO_UNIT_RETRY, fingerprint, judge

if TYPE_CHECKING:
    from uok.domain.kernel.kernel import Kernel, TurnInfo

MEMORY_RUNS = 20  # most recent runs listed in a GateMemory


class MemoryEntry(msgspec.Struct, kw_only=True):
    gate_id: str
    count: int = 0
    first_seen: Any = None
    last_seen: Any = None
    runs: list[str] = []


class GatePass(msgspec.Struct, kw_only=True):
    """One turn's progress through its gates."""

    turn_id: str
    unit_id: str
    gates: tuple[str, ...]
    index: int = 0
    attempt: int = 0  # attempt in flight; 0 = none
    gate_type: str = ""
    ran: list[str] = []


class GateState:
    """What the kernel keeps for gates: breakers, memory, costs (all folded
    from the log, any run) and the current run's gate passes."""

    def __init__(self) -> None:
        self.breakers = brk.BreakerBook()
        self.memory: dict[str, MemoryEntry] = {}
        self.costs = cost_guard.CostLedger()
        self.passes: dict[str, GatePass] = {}
        self._flags_run: str | None = None
        self.flags = Flags()
        self.table = CostTable()


def state(k: Kernel) -> GateState:
    st = getattr(k, "gating", None)
    if st is None:
        st = k.gating = GateState()  # type: ignore[attr-defined]
    return st


def flags_of(k: Kernel) -> GateState:
    """The state with this run's resolved flags and cost table loaded."""
    st = state(k)
    if st._flags_run != k.run_id:
        st.flags = recorded_flags(k.flags)
        st.table = CostTable.with_overrides(st.flags.cost_guard.table_rows)
        st._flags_run = k.run_id
    return st


def registered(k: Kernel) -> dict[str, str]:
    raw = k.flags.get("gates") or {}
    if isinstance(raw, dict):
        return {str(g): str(t) for g, t in raw.items()}
    return {str(g): "unknown" for g in raw}


# --------------------------------------------------------------------------- folds


def _pass_of(k: Kernel, turn_id: str, unit_id: str, gate_id: str) -> GatePass | None:
    """The current run's pass for a turn, if ``gate_id`` is one of its gates."""
    st = state(k)
    gp = st.passes.get(turn_id)
    if gp is None:
        node = k.nodes.get(unit_id)
        if node is None or gate_id not in node.gates or turn_id not in k.in_flight:
            return None
        gp = st.passes[turn_id] = GatePass(turn_id=turn_id, unit_id=unit_id, gates=node.gates)
    return gp if gate_id in gp.gates else None


def fold_gate_run(k: Kernel, e: GateRun) -> None:
    st = state(k)
    brk.apply(st.breakers, e)
    if e.run_id == k.run_id and e.outcome != "retry":
        gp = _pass_of(k, e.turn_id, e.unit_id, e.gate_id)
        if gp is not None:  # a final result: this gate is done, the next one is due
            gp.ran.append(f"{e.gate_id}:{'short-circuited' if e.short_circuited else e.outcome}")
            gp.index, gp.attempt = gp.gates.index(e.gate_id) + 1, 0
    if e.fingerprint and e.outcome not in ("pass", "skip"):
        try:
            m = st.memory.get(e.fingerprint)
            if m is None:
                m = st.memory[e.fingerprint] = MemoryEntry(gate_id=e.gate_id, first_seen=e.at)
            m.count += 1
            m.last_seen = e.at
            if e.run_id and e.run_id not in m.runs:
                m.runs.append(e.run_id)
                del m.runs[:-MEMORY_RUNS]
        except Exception:  # a damaged history is dropped, never fatal: memory is an enrichment  # noqa: BLE001
            st.memory.pop(e.fingerprint, None)


def fold_breaker(k: Kernel, e: Any) -> None:
    brk.apply(state(k).breakers, e)


def fold_requested(k: Kernel, e: GateRequested) -> None:
    brk.apply(state(k).breakers, e)
    if e.run_id == k.run_id:
        gp = _pass_of(k, e.turn_id, e.unit_id, e.gate_id)
        if gp is not None:
            gp.index, gp.attempt, gp.gate_type = gp.gates.index(e.gate_id), e.attempt, e.gate_type


def fold_turn_finished(k: Kernel, e: ev.TurnFinished) -> None:
    state(k).costs.apply(e)
    state(k).passes.pop(e.turn_id, None)


def fold_cost(k: Kernel, e: Any) -> None:
    state(k).costs.apply(e)


def memory_for(st: GateState, fp: str) -> GateMemory | None:
    """Earlier failures with this fingerprint (None if there were none)."""
    m = st.memory.get(fp)
    if m is None or m.count == 0:
        return None
    return GateMemory(fingerprint=fp, count=m.count, first_seen=m.first_seen, last_seen=m.last_seen, runs=tuple(m.runs))


# --------------------------------------------------------------------------- decisions


def _gate_run(
    k: Kernel,
    gp_turn: str,
    unit_id: str,
    gate_id: str,
    gate_type: str,
    *,
    attempt: int,
    max_attempts: int,
    outcome: str,
    failure_class: str,
    rationale: str,
    retryable: bool = False,
    findings: tuple[Finding, ...] = (),
    duration_ms: int = 0,
    short_circuited: bool = False,
    breaker_state: str = "",
) -> GateRun:
    st = state(k)
    fp, memory, memory_error = "", None, ""
    if outcome not in ("pass", "skip"):
        fp = fingerprint(gate_id, failure_class, rationale)
        try:
            memory = memory_for(st, fp)
        except Exception as exc:  # degrade: the result stands without its history  # noqa: BLE001
            memory_error = f"{type(exc).__name__}: {exc}"
    run = GateRun(
        run_id=k.run_id,
        at=k._at,
        turn_id=gp_turn,
        unit_id=unit_id,
        gate_id=gate_id,
        gate_type=gate_type,
        attempt=attempt,
        max_attempts=max_attempts,
        outcome=outcome,
        failure_class=failure_class,
        retryable=retryable,
        rationale=rationale,
        findings=findings,
        duration_ms=duration_ms,
        short_circuited=short_circuited,
        fingerprint=fp,
        memory=memory,
        breaker_state=breaker_state,
        memory_error=memory_error,
    )
    k.emit(run)
    return run


def cost_guard_stops(k: Kernel, turn: TurnInfo, obs: ev.ExecutionFinished, ok: bool) -> bool:
    """Price the turn's usage and judge it; True if the guard ended the turn."""
    if not obs.usage:
        return False
    st = flags_of(k)
    if not (st.flags.enabled and st.flags.cost_guard.enabled):
        return False
    plan_id = k.graph.plan_id if k.graph else ""
    rows = cost_guard.price(
        st.table, obs.usage, run_id=k.run_id, at=k._at, turn_id=turn.turn_id, unit_id=turn.unit_id, plan_id=plan_id
    )
    for row in rows:
        k.emit(row)
    verdict = cost_guard.check(
        st.costs,
        st.table,
        st.flags.cost_guard,
        rows,
        plan_id=plan_id,
        unit_id=turn.unit_id,
        now=k._at,
        turn_failed=not ok,
    )
    findings = tuple(
        Finding(
            kind="cost",
            message=f"{r.model}: {r.input_tokens} in, {r.output_tokens} out, "
            f"${r.cost_usd:.6f}" + ("" if r.priced else " (unpriced)"),
        )
        for r in rows
    )
    _gate_run(
        k,
        turn.turn_id,
        turn.unit_id,
        cost_guard.GATE_ID,
        cost_guard.GATE_TYPE,
        attempt=1,
        max_attempts=1,
        outcome="pass" if verdict.ok else "fail",
        failure_class="none" if verdict.ok else "policy",
        rationale=verdict.rationale,
        findings=findings,
    )
    if verdict.ok:
        return False
    conclude(k, turn, "fail", "policy", f"cost guard: {verdict.rationale}")
    return True


def start_gates(k: Kernel, turn: TurnInfo) -> None:
    """The unit's command succeeded (or it has none): run its gates, or complete it."""
    node = k.nodes[turn.unit_id]
    if not node.gates:
        k._conclude(turn, success=True)
        return
    gp = _pass_of(k, turn.turn_id, turn.unit_id, node.gates[0])
    assert gp is not None
    _next_gate(k, turn, gp)


def _next_gate(k: Kernel, turn: TurnInfo, gp: GatePass) -> None:
    st = flags_of(k)
    known = registered(k)
    while gp.index < len(gp.gates):
        gid = gp.gates[gp.index]
        enabled, key = st.flags.gate_enabled(gid)
        gtype = known.get(gid, "unknown")
        if not enabled:
            _gate_run(
                k,
                turn.turn_id,
                turn.unit_id,
                gid,
                gtype,
                attempt=1,
                max_attempts=1,
                outcome="skip",
                failure_class="none",
                rationale=f"disabled by {key} = false",
            )
            continue  # the fold of that GateRun moved gp.index on
        if gid not in known:
            _gate_run(
                k,
                turn.turn_id,
                turn.unit_id,
                gid,
                "unknown",
                attempt=1,
                max_attempts=1,
                outcome="manual-attention",
                failure_class="unknown",
                rationale=f"Gate {gid} not registered",
            )
            return _finish(k, turn, gp, "manual-attention", "manual-attention", f"Gate {gid} not registered")
        bstate, probe = "", False
        if st.flags.breakers.enabled:
            policy = st.flags.breaker_policy(gid)
            rec = st.breakers.get(gid)
            moved = brk.tick(rec, policy, k._at, run_id=k.run_id)
            if moved is not None:
                k.emit(moved)
            admitted, probe = brk.admit(rec, policy)
            bstate = rec.state
            if not admitted:
                why = brk.short_circuit_reason(rec)
                _gate_run(
                    k,
                    turn.turn_id,
                    turn.unit_id,
                    gid,
                    gtype,
                    attempt=1,
                    max_attempts=1,
                    outcome="fail",
                    failure_class="policy",
                    rationale=why,
                    short_circuited=True,
                    breaker_state=bstate,
                )
                return _finish(k, turn, gp, "fail", "policy", f"gate {gid}: {why}")
        k.emit(
            GateRequested(
                run_id=k.run_id,
                at=k._at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                gate_id=gid,
                gate_type=gtype,
                attempt=1,
                probe=probe,
                breaker_state=bstate,
            )
        )
        return None
    return _finish(k, turn, gp, "pass", "none", "")


def on_evaluated(k: Kernel, obs: GateEvaluated) -> None:
    """Judge one gate attempt the shell executed."""
    turn = k.in_flight.get(obs.turn_id)
    if turn is None or k.exited:
        return  # the turn was cancelled or the run is over: nothing to decide
    st = flags_of(k)
    gp = st.passes.get(obs.turn_id)
    if gp is None or gp.index >= len(gp.gates) or gp.gates[gp.index] != obs.gate_id or gp.attempt != obs.attempt:
        return  # not the attempt we are waiting for (a duplicate or a stale report)
    j = judge(obs.outcome, obs.failure_class, obs.attempt)
    bstate, was_probe, policy = "", False, None
    if st.flags.breakers.enabled:
        policy = st.flags.breaker_policy(obs.gate_id)
        rec = st.breakers.get(obs.gate_id)
        moved = brk.tick(rec, policy, k._at, run_id=k.run_id)
        if moved is not None:
            k.emit(moved)
        bstate, was_probe = rec.state, obs.turn_id in rec.probe_turns
    _gate_run(
        k,
        turn.turn_id,
        turn.unit_id,
        obs.gate_id,
        gp.gate_type,
        attempt=obs.attempt,
        max_attempts=j.max_attempts,
        outcome=j.outcome,
        failure_class=j.failure_class,
        retryable=j.retryable,
        rationale=obs.rationale,
        findings=obs.findings,
        duration_ms=obs.duration_ms,
        breaker_state=bstate,
    )
    if j.retryable:
        k.emit(
            GateRequested(
                run_id=k.run_id,
                at=k._at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                gate_id=obs.gate_id,
                gate_type=gp.gate_type,
                attempt=obs.attempt + 1,
                breaker_state=bstate,
            )
        )
        return
    if policy is not None:
        moved = brk.on_result(
            st.breakers.get(obs.gate_id), policy, j.outcome, k._at, run_id=k.run_id, was_probe=was_probe
        )
        if moved is not None:
            k.emit(moved)
    if j.outcome in ("pass", "skip"):
        _next_gate(k, turn, gp)  # the GateRun's fold moved gp.index on
    elif j.outcome == "manual-attention":
        _finish(k, turn, gp, "manual-attention", j.failure_class, f"gate {obs.gate_id}: {obs.rationale}")
    else:
        _finish(k, turn, gp, "fail", j.failure_class, f"gate {obs.gate_id} failed: {obs.rationale}")
    if turn.turn_id not in k.in_flight:
        k._advance()  # a concluded turn frees a worker, a retried unit is ready again


def _finish(k: Kernel, turn: TurnInfo, gp: GatePass, outcome: str, failure_class: str, reason: str) -> None:
    action = {"pass": "gates-passed", "fail": "gate-failed", "manual-attention": "gate-blocked"}[outcome]
    k.emit(
        ev.PhaseResult(
            run_id=k.run_id, at=k._at, turn_id=turn.turn_id, phase="guard", action=action, data={"gates": list(gp.ran)}
        )
    )
    conclude(k, turn, outcome, failure_class, reason)


def conclude(k: Kernel, turn: TurnInfo, outcome: str, failure_class: str, reason: str) -> None:
    """End a gated turn. ``pass`` → the kernel's own success path; a failure
    of class ``policy`` → failed without retry; ``manual-attention`` →
    blocked (a person must look)."""
    if outcome == "pass":
        k._conclude(turn, success=True)
        return
    if outcome == "fail" and failure_class not in NO_UNIT_RETRY:
        k._conclude(turn, success=False, failure_class=failure_class, reason=reason)
        return
    to_state = "blocked" if outcome == "manual-attention" else "failed"
    k.emit(ev.PhaseResult(run_id=k.run_id, at=k._at, turn_id=turn.turn_id, phase="finalize", action=to_state))
    k._transition(turn.unit_id, to_state, failure_class=failure_class, reason=reason, turn_id=turn.turn_id)
    k._transition(
        turn.unit_id,
        "notified",
        reason="not retried: "
        + ("needs manual attention" if to_state == "blocked" else f"{failure_class} failures are not retried"),
    )
    k._finish_turn(turn, "failed", failure_class=failure_class, error=reason)


FOLDS = {
    GateRun: fold_gate_run,
    GateRequested: fold_requested,
    BreakerTransitioned: fold_breaker,
    CostRecorded: fold_cost,
}
HANDLERS = {GateEvaluated: on_evaluated}


def install(folds: dict[type, Any], handlers: dict[type, Any]) -> None:
    """Add the gate folds and handlers to the kernel's tables; a type that
    already has a fold (``TurnFinished``) gets both, the kernel's first."""
    extra = {**FOLDS, ev.TurnFinished: fold_turn_finished}
    for typ, fn in extra.items():
        old = folds.get(typ)
        folds[typ] = fn if old is None else _chain(old, fn)
    handlers.update(HANDLERS)


def _chain(first: Any, second: Any) -> Any:
    def both(k: Kernel, e: Any) -> None:
        first(k, e)
        second(k, e)

    return both
