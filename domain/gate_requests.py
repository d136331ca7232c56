"""``GateRequested``: the kernel's decision that a gate must execute now.

The gate runner's flow is pure (``domain/gating.py``), but executing a gate
is a side effect. So the kernel *asks*: it records ``GateRequested`` for
gate G, attempt N of a turn; the shell sees the decision, runs the gate in
a worker thread and feeds back a ``GateEvaluated`` observation, which the
kernel judges against the retry matrix. Recording the request (not just the
result) is what lets a half-open breaker count its probes in flight, and
lets a reader see a gate that was asked for but never answered.
"""

from __future__ import annotations

from uok.domain.events import Event


class GateRequested(Event, frozen=True, kw_only=True):
    turn_id: str
    unit_id: str
    gate_id: str
    gate_type: str
    attempt: int
    probe: bool = False  # admitted by a half-open breaker as a probe
    breaker_state: str = ""  # the gate's breaker state at this decision ("" = breakers off)
