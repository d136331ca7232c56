"""The gate runner as pure decisions (behaviour §2).

A turn whose command succeeded is not done yet: the gates its task lists
run first, in order, and the unit's outcome follows them. Executing a gate
is a side effect, so the kernel only *decides*:

1. the cost guard may already have ended the turn (``rules.pricing``);
2. for each listed gate, in order:

   * disabled by config → ``GateRun`` ``skip``;
   * not registered (``KernelEntered.flags["gates"]``, typed in ``state.flags.gates``, lists what the shell
     can execute) → ``GateRun`` ``manual-attention``/``unknown``,
     "Gate <id> not registered": fail-closed, the unit is ``blocked``;
   * its breaker refuses the call (:mod:`uok.domain.policies.breaker`;
     time-based transitions are applied first, at the observation's time) →
     short-circuited ``GateRun`` ``fail``/``policy``, "circuit open until …";
   * otherwise ``GateRequested`` attempt N; the shell runs it and answers
     with ``GateEvaluated``, which :func:`on_evaluated` judges with the retry
     matrix (:func:`uok.domain.policies.gates.judge`) into a ``GateRun``
     (``retry`` → request attempt N+1), then feeds the final result to the
     breaker.

3. all gates pass (or skip) → the unit completes; a final ``fail`` → the
   unit fails with the gate's failure class (its own retry budget applies,
   except for ``policy``); ``manual-attention`` → the unit is ``blocked``.

A non-pass ``GateRun`` carries a fingerprint and, when the same gate failed
the same way before, a ``GateMemory`` folded from the earlier ``GateRun``
events (``rules.gate_history``). Everything here is a function of the
folded log and the observation being handled, so replay reproduces it.
"""

from __future__ import annotations

from typing import Literal

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.gate_history import memory_for
from uok.domain.kernel.state import GatePass, KernelState, TurnInfo
from uok.domain.plan import UnitNode
from uok.domain.policies import breaker as brk
from uok.domain.policies.gates import NO_UNIT_RETRY, fingerprint, judge
from uok.domain.policies.modes import ENFORCED_PROFILES, resolve_permission_profile

Ending = Literal["pass", "fail", "manual-attention"]  # how a turn's gates end

# --------------------------------------------------------------------------- folds


def gates_of(st: KernelState, node: UnitNode) -> tuple[str, ...]:
    """A unit's gates in order: its task's, then the run's publish gate
    (``uok run --gitops commit``: ``KernelEntered.flags["publish_gate"]``)
    for a unit that runs a command, so a unit completes only once its work
    is committed, and a failed commit fails it like any gate. Before it, for
    a unit under a ``restricted`` or ``strict`` profile, the run's
    permission gate (``flags["permission_gate"]``): what it changed is
    checked before anything is published."""
    gates = node.gates
    guard = st.flags.permission_gate  # behaviour §5: a restricted or strict unit's changes are checked
    if guard and (node.command is not None or node.agent is not None) and guard not in gates:
        profile = resolve_permission_profile(node.metadata.get("permission_profile") or st.flags.permission_profile)
        if profile in ENFORCED_PROFILES:
            gates = (*gates, guard)
    publish = st.flags.publish_gate
    if publish and node.command is not None and publish not in gates:
        return (*gates, publish)
    return gates


def breaker_guards(st: KernelState, gate_id: str) -> bool:
    """Breakers guard the task's gates; the publish gate fails per unit (a
    conflict, a rejected push), never because a service is down."""
    return st.flags.settings.breakers.enabled and gate_id != st.flags.publish_gate


def breaker_key(st: KernelState, gate_id: str) -> str:
    """The breaker a gate call of the driven run consults: the plan's own
    (``<plan>/<gate>``, runs recording ``breaker_scope = "plan"``, the
    default) or the one every plan shares (the gate id: ``"shared"``, and
    every run recorded before scopes existed)."""
    return f"{st.plan_id}/{gate_id}" if st.flags.breaker_scope == "plan" else gate_id


def pass_for(st: KernelState, turn_id: str, unit_id: str, gate_id: str) -> GatePass | None:
    """The driven run's pass for a turn, if ``gate_id`` is one of its gates."""
    passes = st.gates.passes
    gp = passes.get(turn_id)
    if gp is None:
        node = st.nodes.get(unit_id)
        gates = gates_of(st, node) if node is not None else ()
        if node is None or gate_id not in gates or turn_id not in st.in_flight:
            return None
        gp = passes[turn_id] = GatePass(turn_id=turn_id, unit_id=unit_id, gates=gates)
    return gp if gate_id in gp.gates else None


def awaited(st: KernelState, turn_id: str, gate_id: str, attempt: int) -> GatePass | None:
    """The turn's pass if it waits for exactly this gate attempt (else None)."""
    gp = st.gates.passes.get(turn_id)
    if gp is None or gp.index >= len(gp.gates) or gp.gates[gp.index] != gate_id or gp.attempt != attempt:
        return None
    return gp


def fold_result(st: KernelState, e: ev.GateRun) -> None:
    """A final result of the driven run: this gate is done, the next one is due."""
    if e.run_id == st.run_id and e.outcome != "retry":
        gp = pass_for(st, e.turn_id, e.unit_id, e.gate_id)
        if gp is not None:
            gp.ran.append(f"{e.gate_id}:{'short-circuited' if e.short_circuited else e.outcome}")
            gp.index, gp.attempt = gp.gates.index(e.gate_id) + 1, 0


def fold_requested(st: KernelState, e: ev.GateRequested) -> None:
    if e.run_id == st.run_id:
        gp = pass_for(st, e.turn_id, e.unit_id, e.gate_id)
        if gp is not None:
            gp.index, gp.attempt, gp.gate_type = gp.gates.index(e.gate_id), e.attempt, e.gate_type


def fold_turn_finished(st: KernelState, e: ev.TurnFinished) -> None:
    st.gates.passes.pop(e.turn_id, None)


# --------------------------------------------------------------------------- decisions


def record_run(
    ctx: Context,
    turn: TurnInfo,
    gate_id: str,
    gate_type: str,
    *,
    attempt: int,
    max_attempts: int,
    outcome: ev.GateOutcome,
    failure_class: str,
    rationale: str,
    retryable: bool = False,
    findings: tuple[ev.Finding, ...] = (),
    duration_ms: int = 0,
    short_circuited: bool = False,
    breaker_state: str = "",
    breaker: str = "",
) -> ev.GateRun:
    """Decide a ``GateRun``; a non-pass carries its fingerprint and memory."""
    fp, memory, memory_error = "", None, ""
    if outcome not in ("pass", "skip"):
        fp = fingerprint(gate_id, failure_class, rationale)
        try:
            memory = memory_for(ctx.state.gates, fp)
        except Exception as exc:  # degrade: the result stands without its history  # noqa: BLE001
            memory_error = f"{type(exc).__name__}: {exc}"
    run = ev.GateRun(
        run_id=ctx.run_id,
        at=ctx.at,
        turn_id=turn.turn_id,
        unit_id=turn.unit_id,
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
        breaker=breaker,
    )
    ctx.emit(run)
    return run


def start_gates(ctx: Context, turn: TurnInfo) -> None:
    """The unit's command succeeded (or it has none): run its gates, or complete it."""
    node = ctx.state.nodes[turn.unit_id]
    gates = gates_of(ctx.state, node)
    if not gates:
        ctx.conclude(turn, success=True)
        return
    gp = pass_for(ctx.state, turn.turn_id, turn.unit_id, gates[0])
    assert gp is not None
    _next_gate(ctx, turn, gp)


def _next_gate(ctx: Context, turn: TurnInfo, gp: GatePass) -> None:
    st = ctx.state
    settings, known = st.flags.settings, st.flags.gates
    while gp.index < len(gp.gates):
        gid = gp.gates[gp.index]
        enabled, key = settings.gate_enabled(gid)
        gtype = known.get(gid, "unknown")
        if not enabled:
            record_run(
                ctx,
                turn,
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
            record_run(
                ctx,
                turn,
                gid,
                "unknown",
                attempt=1,
                max_attempts=1,
                outcome="manual-attention",
                failure_class="unknown",
                rationale=f"Gate {gid} not registered",
            )
            return _finish(ctx, turn, gp, "manual-attention", "manual-attention", f"Gate {gid} not registered")
        bstate, probe, bkey = "", False, ""
        if breaker_guards(st, gid):
            policy = settings.breaker_policy(gid)
            rec = st.gates.breakers.get(breaker_key(st, gid), gid)
            bkey = rec.breaker
            moved = brk.tick(rec, policy, ctx.at, run_id=ctx.run_id)
            if moved is not None:
                ctx.emit(moved)
            admitted, probe = brk.admit(rec, policy)
            bstate = rec.state
            if not admitted:
                why = brk.short_circuit_reason(rec)
                b = settings.breakers
                if st.flags.breaker_scope and b.hold and st.gates.hold_counts.get(turn.unit_id, 0) < b.max_holds:
                    return hold(ctx, turn, gid, gtype, rec, why)  # until the breaker lets a probe through
                if st.flags.breaker_scope and b.hold:
                    why += f"; held {b.max_holds} time(s) already"
                record_run(
                    ctx,
                    turn,
                    gid,
                    gtype,
                    attempt=1,
                    max_attempts=1,
                    outcome="fail",
                    failure_class="policy",
                    rationale=why,
                    short_circuited=True,
                    breaker_state=bstate,
                    breaker=bkey,
                )
                return _finish(ctx, turn, gp, "fail", "policy", f"gate {gid}: {why}")
        ctx.emit(
            ev.GateRequested(
                run_id=ctx.run_id,
                at=ctx.at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                gate_id=gid,
                gate_type=gtype,
                attempt=1,
                probe=probe,
                breaker_state=bstate,
                breaker=bkey,
            )
        )
        return None
    return _finish(ctx, turn, gp, "pass", "none", "")


def on_evaluated(ctx: Context, obs: ev.GateEvaluated) -> None:
    """Judge one gate attempt the shell executed."""
    st = ctx.state
    turn = st.in_flight.get(obs.turn_id)
    if turn is None or st.exited:
        return  # the turn was cancelled or the run is over: nothing to decide
    settings = st.flags.settings
    gp = awaited(st, obs.turn_id, obs.gate_id, obs.attempt)
    if gp is None:
        return  # not the attempt we are waiting for (a duplicate or a stale report)
    j = judge(obs.outcome, obs.failure_class, obs.attempt)
    bstate, was_probe, policy, bkey = "", False, None, ""
    if breaker_guards(st, obs.gate_id):
        policy = settings.breaker_policy(obs.gate_id)
        rec = st.gates.breakers.get(breaker_key(st, obs.gate_id), obs.gate_id)
        bkey = rec.breaker
        moved = brk.tick(rec, policy, ctx.at, run_id=ctx.run_id)
        if moved is not None:
            ctx.emit(moved)
        bstate, was_probe = rec.state, obs.turn_id in rec.probe_turns
    record_run(
        ctx,
        turn,
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
        breaker=bkey,
    )
    if j.retryable:
        ctx.emit(
            ev.GateRequested(
                run_id=ctx.run_id,
                at=ctx.at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                gate_id=obs.gate_id,
                gate_type=gp.gate_type,
                attempt=obs.attempt + 1,
                breaker_state=bstate,
                breaker=bkey,
            )
        )
        return
    if policy is not None:
        moved = brk.on_result(
            st.gates.breakers.get(breaker_key(st, obs.gate_id), obs.gate_id),
            policy,
            j.outcome,
            ctx.at,
            run_id=ctx.run_id,
            was_probe=was_probe,
        )
        if moved is not None:
            ctx.emit(moved)
    if j.outcome in ("pass", "skip"):
        _next_gate(ctx, turn, gp)  # the GateRun's fold moved gp.index on
    elif j.outcome == "manual-attention":
        _finish(ctx, turn, gp, "manual-attention", j.failure_class, f"gate {obs.gate_id}: {obs.rationale}")
    else:
        _finish(ctx, turn, gp, "fail", j.failure_class, f"gate {obs.gate_id} failed: {obs.rationale}")
    if turn.turn_id not in st.in_flight:
        ctx.advance()  # a concluded turn frees a worker, a retried unit is ready again


def _finish(
    ctx: Context, turn: TurnInfo, gp: GatePass, outcome: Ending, failure_class: ev.FailureClass, reason: str
) -> None:
    action = {"pass": "gates-passed", "fail": "gate-failed", "manual-attention": "gate-blocked"}[outcome]
    ctx.phase(turn.turn_id, "guard", action, {"gates": list(gp.ran)})
    conclude(ctx, turn, outcome, failure_class, reason)


def conclude(ctx: Context, turn: TurnInfo, outcome: Ending, failure_class: ev.FailureClass, reason: str) -> None:
    """End a gated turn. ``pass`` → the kernel's own success path; a failure
    of class ``policy`` → failed without retry; ``manual-attention`` →
    blocked (a person must look)."""
    if outcome == "pass":
        ctx.conclude(turn, success=True)
        return
    if outcome == "fail" and failure_class not in NO_UNIT_RETRY:
        ctx.conclude(turn, success=False, failure_class=failure_class, reason=reason)
        return
    to_state: ev.UnitState = "blocked" if outcome == "manual-attention" else "failed"
    ctx.phase(turn.turn_id, "finalize", to_state)
    ctx.transition(turn.unit_id, to_state, failure_class=failure_class, reason=reason, turn_id=turn.turn_id)
    ctx.transition(
        turn.unit_id,
        "notified",
        reason="not retried: "
        + ("needs manual attention" if to_state == "blocked" else f"{failure_class} failures are not retried"),
    )
    ctx.finish_turn(turn, "failed", failure_class=failure_class, error=reason)


# --------------------------------------------------------------------------- holds


def hold(ctx: Context, turn: TurnInfo, gate_id: str, gate_type: str, rec: brk.BreakerRecord, why: str) -> None:
    """The breaker refused the call: hold the unit instead of failing it. The
    short-circuit is recorded (``GateRun`` ``skip``), ``BreakerHeld`` says
    why and until when, the turn ends ``stopped`` and the unit is queued
    again with its attempt unspent; dispatch passes it over until the
    breaker leaves ``open`` (``fold_breaker_moved``), which the shell's
    timer (``BreakerDue``) or any other gate call brings about."""
    st = ctx.state
    record_run(
        ctx,
        turn,
        gate_id,
        gate_type,
        attempt=1,
        max_attempts=1,
        outcome="skip",
        failure_class="none",
        rationale=f"{why}; unit held",
        short_circuited=True,
        breaker_state=rec.state,
        breaker=rec.breaker,
    )
    until = rec.open_until if rec.state == "open" else rec.probe_deadline
    key = rec.key or rec.gate_id
    ctx.emit(
        ev.BreakerHeld(
            run_id=ctx.run_id,
            at=ctx.at,
            plan_id=st.plan_id,
            unit_id=turn.unit_id,
            turn_id=turn.turn_id,
            gate_id=gate_id,
            breaker=key,
            until=until,
            reason=why,
        )
    )
    unit = st.unit(turn.unit_id)
    assert unit is not None
    reason = f"held: breaker {key} {why}"
    ctx.phase(turn.turn_id, "finalize", "held")
    ctx.transition(turn.unit_id, "cancelled", reason=reason, turn_id=turn.turn_id)
    ctx.transition(turn.unit_id, "queued", attempt=unit.attempt, reason=reason)
    ctx.finish_turn(turn, "stopped", failure_class="none", error=reason)


def fold_entered_holds(st: KernelState, e: ev.KernelEntered) -> None:
    """Holds are the driven run's: a run starts with none (a snapshot taken
    after a run that ended with units held must not keep them held)."""
    st.gates.holds = {}
    st.gates.hold_counts = {}


def fold_held(st: KernelState, e: ev.BreakerHeld) -> None:
    if e.run_id == st.run_id:
        st.gates.holds[e.unit_id] = e.breaker
        st.gates.hold_counts[e.unit_id] = st.gates.hold_counts.get(e.unit_id, 0) + 1


def fold_breaker_moved(st: KernelState, e: ev.BreakerTransitioned) -> None:
    """A breaker that lets calls through again releases the units it held."""
    if e.to_state != "open" and st.gates.holds:
        key = brk.key_of(e)
        st.gates.holds = {u: k for u, k in st.gates.holds.items() if k != key}


def on_due(ctx: Context, obs: ev.BreakerDue) -> None:
    """The shell's timer: the time a held unit's breaker named has come."""
    st = ctx.state
    if st.exited:
        return
    settings = st.flags.settings
    rec = st.gates.breakers.gates.get(obs.breaker or obs.gate_id)
    if rec is not None and settings.breakers.enabled:
        moved = brk.tick(rec, settings.breaker_policy(obs.gate_id), ctx.at, run_id=ctx.run_id)
        if moved is not None:
            ctx.emit(moved)  # its fold releases the units held on this breaker
    ctx.advance()
