"""Events of the gate system (behaviour §2, §9, §10): gate attempts, breaker
transitions, the cost ledger.

``GateEvaluated`` is the raw observation of running a gate once (what the
command returned, what the scanner found); ``GateRun`` is the runner's
decision about that attempt (``retry`` or the final outcome), taken by the
pure retry matrix. A short-circuit by an open breaker is a ``GateRun`` with
``short_circuited=True`` and no ``GateEvaluated`` before it: the gate did
not execute.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

import msgspec
from uok.domain.events.base import Event
from uok.domain.events.runs import ModelUsage

GateOutcome = Literal["pass", "fail", "retry", "manual-attention", "skip"]
BreakerState = Literal["closed", "half-open", "open"]


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """One thing a gate found. Never the secret itself: a fingerprint of it."""

    file: str = ""
    line: int = 0
    kind: str = ""
    fingerprint: str = ""
    message: str = ""


class GateMemory(msgspec.Struct, frozen=True, kw_only=True):
    """Earlier failures of the same gate with the same fingerprint."""

    fingerprint: str
    count: int
    first_seen: datetime
    last_seen: datetime
    runs: tuple[str, ...] = ()


class GateEvaluated(Event, frozen=True, kw_only=True):
    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    gate_id: str
    gate_type: str
    attempt: int
    outcome: Literal["pass", "fail", "skip", "manual-attention"]
    failure_class: str = "none"
    rationale: str = ""
    findings: tuple[Finding, ...] = ()
    duration_ms: int = 0


class GateRequested(Event, frozen=True, kw_only=True):
    """The kernel's decision that a gate must execute now.

    The gate runner's flow is pure (:mod:`uok.domain.kernel.rules.gating`), but executing a gate
    is a side effect. So the kernel *asks*: it records ``GateRequested`` for
    gate G, attempt N of a turn; the shell sees the decision, runs the gate in
    a worker thread and feeds back a ``GateEvaluated`` observation, which the
    kernel judges against the retry matrix. Recording the request (not just the
    result) is what lets a half-open breaker count its probes in flight, and
    lets a reader see a gate that was asked for but never answered.
    """

    turn_id: str
    unit_id: str
    gate_id: str
    gate_type: str
    attempt: int
    probe: bool = False  # admitted by a half-open breaker as a probe
    breaker_state: str = ""  # the gate's breaker state at this decision ("" = breakers off)
    breaker: str = ""  # the breaker's key when it is scoped ("<plan>/<gate>"); "" = the gate id (shared)


class GateRun(Event, frozen=True, kw_only=True):
    turn_id: str
    unit_id: str
    gate_id: str
    gate_type: str
    attempt: int
    max_attempts: int
    outcome: GateOutcome
    failure_class: str = "none"
    retryable: bool = False
    rationale: str = ""
    findings: tuple[Finding, ...] = ()
    duration_ms: int = 0
    short_circuited: bool = False
    fingerprint: str = ""
    memory: GateMemory | None = None
    # the gate's breaker state when this was decided; "" when no breaker was
    # consulted (unknown or disabled gate, the cost guard, breakers off)
    breaker_state: str = ""
    memory_error: str = ""  # why memory could not be computed (the shell logs it)
    breaker: str = ""  # the breaker's key when it is scoped ("<plan>/<gate>"); "" = the gate id (shared)


class BreakerTransitioned(Event, frozen=True, kw_only=True):
    gate_id: str
    from_state: BreakerState
    to_state: BreakerState
    streak: int
    consecutive_failures: int
    open_until: datetime | None = None
    reason: str = ""
    probe_deadline: datetime | None = None  # half-open: a probe not reported by then re-opens it
    breaker: str = ""  # the breaker's key when it is scoped ("<plan>/<gate>"); "" = the gate id (shared)


class BreakerHeld(Event, frozen=True, kw_only=True):
    """A unit whose gate's breaker refused the call is held, not failed: its
    turn ends, it is queued again with its attempt unspent, and it is not
    dispatched until the breaker lets a probe through (``until``)."""

    plan_id: str
    unit_id: str
    turn_id: str
    gate_id: str
    breaker: str  # the breaker's key
    until: datetime | None = None
    reason: str = ""


class BreakerDue(Event, frozen=True, kw_only=True):
    """The time a held unit's breaker said to come back has come (the shell's
    timer): the kernel moves the breaker on and dispatches what it lets through."""

    OBSERVED: ClassVar[bool] = True

    gate_id: str
    breaker: str = ""


class UsageReported(Event, frozen=True, kw_only=True):
    """Usage a task reported *while it ran* (lines appended to its usage
    file, read as they arrive): the cost guard prices and judges it at
    once, so a task crossing its ceiling is stopped mid-turn."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    usage: tuple[ModelUsage, ...] = ()


class CostRecorded(Event, frozen=True, kw_only=True):
    """The priced usage of one turn, one row per model."""

    turn_id: str
    unit_id: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    priced: bool = True  # False: model not in the cost table, cost_usd is 0
    plan_id: str = ""
