"""What the kernel decides when the chaos monkey strikes (behaviour §15).

The chaos monkey (``adapters/chaos.py``) is opt-in and seeded; its random
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

from typing import TYPE_CHECKING, Any

from uok.domain import events as ev
from uok.domain.events import ChaosInjected, GateEvaluated
from uok.domain.kernel import gating

if TYPE_CHECKING:  # pragma: no cover
    from uok.domain.kernel.kernel import Kernel

FAILURE_CLASS = "execution"


def reason(obs: ChaosInjected) -> str:
    where = f"gate {obs.gate_id} attempt {obs.attempt}" if obs.gate_id else f"{obs.boundary} of attempt {obs.attempt}"
    return f"chaos monkey: injected partial failure at {where} (seed {obs.seed}, injection #{obs.sequence})"


def on_injected(k: Kernel, obs: ChaosInjected) -> None:
    """The decision rule for ``ChaosInjected``."""
    if obs.fault != "partial-failure" or k.exited or obs.run_id != k.run_id:
        return
    turn = k.in_flight.get(obs.turn_id)
    if turn is None:
        return
    if obs.gate_id:
        _fail_gate_attempt(k, obs)
        return
    k.emit(
        ev.PhaseResult(
            run_id=k.run_id,
            at=k._at,
            turn_id=turn.turn_id,
            phase="unit",
            action="chaos",
            data={"fault": obs.fault, "boundary": obs.boundary, "sequence": obs.sequence},
        )
    )
    k._conclude(turn, success=False, failure_class=FAILURE_CLASS, reason=reason(obs))
    k._advance()


def _fail_gate_attempt(k: Kernel, obs: ChaosInjected) -> None:
    gp = gating.state(k).passes.get(obs.turn_id)
    if gp is None or gp.index >= len(gp.gates) or gp.gates[gp.index] != obs.gate_id or gp.attempt != obs.attempt:
        return  # not the attempt being waited for
    gating.on_evaluated(
        k,
        GateEvaluated(
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


def install(folds: dict[type, Any], handlers: dict[type, Any]) -> None:
    """Add the chaos decision rule to the kernel's tables (nothing to fold)."""
    handlers[ChaosInjected] = on_injected
