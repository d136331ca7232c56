"""The event vocabulary: one msgspec Struct per kind of thing that happened.

Two families, and the difference is what makes replay possible:

* **Observations** (``OBSERVED = True``) are inputs from the outside world: a
  clock reading, a pid and whether it was alive, what a subprocess returned,
  what a gate found, a signal, a chaos injection. The shell measures them;
  the domain never does.
* **Decisions** are what the kernel concluded from the observations and the
  state folded so far. Re-running the domain over the recorded observations
  must reproduce the recorded decisions exactly; ``replay`` checks it.

Every event names the run that authored it (``run_id``, empty for events
written outside a run, such as a bus message sent from the CLI) and carries
``at``, the wall-clock reading supplied by the shell.

Events are encoded with msgspec JSON; the stored topic is ``Name/vN``. When
a Struct's shape changes, bump ``VERSION`` and register an upcaster from the
old version (see :mod:`uok.domain.codec`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec
from uok.domain.plan import UnitGraph
from uok.domain.spawn import SpawnRequest

KernelStatus = Literal["ok", "error", "terminated", "recovered"]
UnitState = Literal[
    "queued",
    "claimed",
    "running",
    "progress",
    "completed",
    "failed",
    "blocked",
    "cancelled",
    "stale",
    "runaway-recovered",
    "notified",
]
TurnStatus = Literal["completed", "failed", "paused", "stopped", "skipped", "retry"]
FailureClass = Literal[
    "none",
    "policy",
    "input",
    "execution",
    "artifact",
    "verification",
    "closeout",
    "git",
    "timeout",
    "manual-attention",
    "unknown",
]
TurnPhase = Literal["pre-dispatch", "dispatch", "unit", "finalize", "guard", "custom-engine"]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Base of every event. ``type`` (the tag) is the class name."""

    OBSERVED: ClassVar[bool] = False
    VERSION: ClassVar[int] = 1

    run_id: str = ""
    at: datetime

    def stream(self) -> str:
        """The aggregate stream this event belongs to (optimistic concurrency unit)."""
        return f"run:{self.run_id}" if self.run_id else "global"

    def pinned_version(self) -> int | None:
        """The version this event must take in its stream, or None for "the next".

        Events whose stream version carries meaning pin it: a writer token's
        global sequence, a message's send (version 1) and read (version 2).
        A racing duplicate then fails on UNIQUE(stream, version) instead of
        quietly taking the next version (see ``uok.adapters.eventlog``)."""
        return None


# --------------------------------------------------------------------------- kernel


class PidProbe(msgspec.Struct, frozen=True):
    """The shell's liveness probe (signal 0) of a run left without an exit."""

    run_id: str
    pid: int
    alive: bool


class KernelEntered(Event, frozen=True, kw_only=True):
    """A kernel started a run. Carries every input the run's decisions depend on."""

    OBSERVED: ClassVar[bool] = True

    pid: int
    host: str = ""
    plan_path: str
    plan_source: str
    workers: int
    flags: dict[str, Any] = {}
    work_mode: str = "auto"
    model_mode: str = "default"
    probes: tuple[PidProbe, ...] = ()


class KernelFailed(Event, frozen=True, kw_only=True):
    """The shell caught an exception it could not handle; the run must end as ``error``."""

    OBSERVED: ClassVar[bool] = True

    error: str


class SignalReceived(Event, frozen=True, kw_only=True):
    """SIGINT/SIGTERM reached the kernel: cancel running units, exit ``terminated``."""

    OBSERVED: ClassVar[bool] = True

    signal: str


class KernelExited(Event, frozen=True, kw_only=True):
    status: KernelStatus
    pid: int
    error: str = ""
    units_completed: int = 0
    units_failed: int = 0


class RunRecovered(Event, frozen=True, kw_only=True):
    """A run found open (entered, never exited, pid dead) was closed as ``recovered``."""

    recovered_run: str
    pid: int
    stale_units: tuple[str, ...] = ()


class PlanCompiled(Event, frozen=True, kw_only=True):
    graph: UnitGraph


# --------------------------------------------------------------------------- units


class UnitTransitioned(Event, frozen=True, kw_only=True):
    """One step of a unit's lifecycle (spec §13b). Units live in their own
    stream per plan, so retry budgets and dispatch counts survive runs."""

    plan_id: str
    unit_id: str
    from_state: str
    to_state: UnitState
    attempt: int
    dispatches: int
    failure_class: FailureClass = "none"
    reason: str = ""
    turn_id: str = ""

    def stream(self) -> str:
        return f"unit:{self.plan_id}:{self.unit_id}"


# --------------------------------------------------------------------------- turns


class ModelUsage(msgspec.Struct, frozen=True):
    """What a task reported it spent on a model (see executor docs)."""

    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class ExecutionFinished(Event, frozen=True, kw_only=True):
    """The executor's report of one unit attempt: observed, never decided."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    exit_code: int | None
    duration_ms: int
    timed_out: bool = False
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    usage: tuple[ModelUsage, ...] = ()
    spawns: tuple[SpawnRequest, ...] = ()  # sub-agents the unit asked for (uok.domain.spawn)


class TurnStarted(Event, frozen=True, kw_only=True):
    turn_id: str
    iteration: int
    unit_id: str
    unit_type: str
    attempt: int


class PhaseResult(Event, frozen=True, kw_only=True):
    turn_id: str
    phase: TurnPhase
    action: str
    data: dict[str, Any] = {}


class TurnFinished(Event, frozen=True, kw_only=True):
    turn_id: str
    unit_id: str
    status: TurnStatus
    failure_class: FailureClass = "none"
    error: str = ""
    started_at: datetime | None = None


# --------------------------------------------------------------------------- writer tokens


class WriterTokenAcquired(Event, frozen=True, kw_only=True):
    """A turn took the writer token. ``sequence`` is the global monotonic
    write sequence (the version of the ``writer`` stream); ``epoch`` fences
    writes made under older tokens.

    Observed, not decided: the shell reads the ``writer`` stream and claims
    its next version, so the sequence is global across processes (see
    ``uok.domain.writer`` and ``uok.adapters.writer``)."""

    OBSERVED: ClassVar[bool] = True

    token_id: str
    turn_id: str
    epoch: int
    sequence: int
    owner: str = "uok"
    pid: int = 0
    ttl_seconds: float = 300.0

    def stream(self) -> str:
        return "writer"

    def pinned_version(self) -> int | None:
        return self.sequence


class WriterTokenReleased(Event, frozen=True, kw_only=True):
    """A token was given back (``released``) or reclaimed after its TTL
    (``expired``). Takes the next writer sequence, like an acquisition."""

    OBSERVED: ClassVar[bool] = True

    token_id: str
    turn_id: str
    epoch: int
    sequence: int
    reason: str = "released"

    def stream(self) -> str:
        return "writer"

    def pinned_version(self) -> int | None:
        return self.sequence
