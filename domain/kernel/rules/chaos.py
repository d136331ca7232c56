"""What the kernel decides when the chaos monkey strikes (behaviour §15).

The chaos monkey (``uok.adapters.chaos``) is opt-in and seeded; its random
source lives in the shell. Every fault it injects is recorded as a
``ChaosInjected`` observation *before* the fault takes effect, and the
kernel decides from that observation alone, so replaying a chaotic run
reproduces every consequence of every fault.

* ``latency``, ``disk-stress``, ``memory-stress``: the shell sleeps, writes
  and deletes a temp file, allocates and frees a buffer. They change no
  decision; the observation is the record that they happened.
* ``partial-failure`` of a **unit** (boundary ``dispatch``: the command is
  never started; boundary ``finalize``: it ran, but the attempt is failed
  anyway): the turn ends ``failed`` with failure class ``execution`` and a
  reason naming the chaos, so the unit's retry budget applies like for any
  other failed attempt. A late ``ExecutionFinished`` of that turn is then
  ignored (the turn is no longer in flight).
* ``partial-failure`` of a **gate** attempt (boundary ``gate``): the gate
  runner judges it exactly like a real attempt that failed with class
  ``execution`` (retry matrix, breaker, memory).

A fault naming a turn that is no longer in flight (or a gate attempt that
is not the one being waited for) decides nothing.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import gating

FAILURE_CLASS: ev.FailureClass = "execution"


def reason(obs: ev.ChaosInjected) -> str:
    where = f"gate {obs.gate_id} attempt {obs.attempt}" if obs.gate_id else f"{obs.boundary} of attempt {obs.attempt}"
    return f"chaos monkey: injected partial failure at {where} (seed {obs.seed}, injection #{obs.sequence})"


def on_injected(ctx: Context, obs: ev.ChaosInjected) -> None:
    """The decision rule for ``ChaosInjected``."""
    st = ctx.state
    if obs.fault != "partial-failure" or st.exited or obs.run_id != st.run_id:
        return
    turn = st.in_flight.get(obs.turn_id)
    if turn is None:
        return
    if obs.gate_id:
        _fail_gate_attempt(ctx, obs)
        return
    ctx.phase(turn.turn_id, "unit", "chaos", {"fault": obs.fault, "boundary": obs.boundary, "sequence": obs.sequence})
    ctx.conclude(turn, success=False, failure_class=FAILURE_CLASS, reason=reason(obs))
    ctx.advance()


def _fail_gate_attempt(ctx: Context, obs: ev.ChaosInjected) -> None:
    gp = gating.awaited(ctx.state, obs.turn_id, obs.gate_id, obs.attempt)
    if gp is None:
        return  # not the attempt being waited for
    gating.on_evaluated(
        ctx,
        ev.GateEvaluated(
            run_id=obs.run_id,
            at=obs.at,
            turn_id=obs.turn_id,
            unit_id=obs.unit_id,
            gate_id=obs.gate_id,
            gate_type=gp.gate_type,
            attempt=obs.attempt,
            outcome="fail",
            failure_class=FAILURE_CLASS,
            rationale=reason(obs),
        ),
    )
