"""Events of a run: the kernel entering and leaving, units moving through
their lifecycle, turns starting and finishing.

These are the events the kernel's own decision loop is made of (see
:mod:`uok.domain.kernel`); every other family of events lives beside this
module in :mod:`uok.domain.events`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Literal

import msgspec
from uok.domain.events.agents import AgentOutcome
from uok.domain.events.base import Event
from uok.domain.events.prices import UsagePrice
from uok.domain.plan import UnitGraph

KernelStatus = Literal["ok", "failed", "error", "terminated", "recovered"]
"""``failed``: the run ended normally but not every unit of its plan completed
(decided only for runs that record the ``failed_runs`` flag: older logs said ``ok``)."""
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
    "config",  # the task's command cannot start (no such executable, not executable): fix the plan, not retried
]
TurnPhase = Literal["pre-dispatch", "dispatch", "unit", "finalize", "guard", "custom-engine"]


# --------------------------------------------------------------------------- kernel


class PidProbe(msgspec.Struct, frozen=True):
    """The shell's liveness probe (signal 0) of a run left without an exit."""

    run_id: str
    pid: int
    alive: bool
    ended: int = 0  # processes of a dead run the shell ended before entering (uok.adapters.orphans)


class KernelEntered(Event, frozen=True, kw_only=True):
    """A kernel started a run. Carries every input the run's decisions depend on.

    v2 (content addressing, :mod:`uok.domain.plan.content`): ``plan_id`` and
    ``plan_sha256`` name the plan's text (``plan_source``, ``plan_files``,
    ``plan_globs``); with ``plan_by_ref`` the text is not repeated here: it is
    that of the latest earlier ``KernelEntered`` of ``plan_id`` holding text
    with that hash. v1 payloads upcast with both empty (text held)."""

    OBSERVED: ClassVar[bool] = True
    VERSION: ClassVar[int] = 2

    pid: int
    host: str = ""
    plan_path: str
    plan_source: str
    plan_id: str = ""  # the plan the shell read (the key its content is stored under)
    plan_sha256: str = ""  # of the text (uok.domain.plan.content.text_sha256); "": recorded before v2
    plan_by_ref: bool = False  # the text is held by an earlier KernelEntered (plan_source etc. are empty)
    workers: int
    flags: dict[str, Any] = {}
    work_mode: str = "auto"
    model_mode: str = "default"
    probes: tuple[PidProbe, ...] = ()
    plan_files: dict[str, str] = {}  # the Markdown task files the plan names: path -> text
    plan_globs: dict[str, tuple[str, ...]] = {}  # a slice's task_files glob -> the files it matched
    artifacts: dict[str, str] = {}  # required artifacts as seen at entry: path -> present|blank|missing


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
    """The graph a run compiled from its plan's text.

    v2 (content addressing, :mod:`uok.domain.plan.content`): ``plan_id`` and
    ``graph_sha256``; ``graph`` is ``None`` when an earlier ``PlanCompiled``
    of ``plan_id`` holds this very graph (same hash): readers resolve it
    (``KernelState.contents``, ``CompiledGraphs``). v1 payloads upcast with
    ``plan_id`` taken from their graph and no hash."""

    VERSION: ClassVar[int] = 2

    plan_id: str
    graph: UnitGraph | None = None  # None: held by an earlier PlanCompiled (graph_sha256)
    graph_sha256: str = ""  # "": recorded before v2, or by a run that does not address content
    fingerprints: dict[str, str] = {}  # unit id -> its definition's fingerprint (uok.domain.plan.fingerprint)


# --------------------------------------------------------------------------- units


class UnitTransitioned(Event, frozen=True, kw_only=True):
    """One step of a unit's lifecycle (behaviour §13b). Units live in their own
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


class SpawnRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A sub-agent spawn request: what a running unit asks the kernel to start.

    A task appends one JSON object per line to the file named by
    ``UOK_SPAWN_FILE``::

        {"id": "lint", "command": ["ruff", "check", "."], "model_mode": "fast"}

    The executor parses the file after the task exits and the requests ride on
    the ``ExecutionFinished`` observation; the kernel decides what to do with
    them (``uok.domain.kernel.rules.subagents``). A line that does not parse still becomes a
    request, carrying ``error``, so the kernel records *why* it was refused
    instead of the spawn vanishing silently.
    """

    id: str = ""
    command: tuple[str, ...] = ()
    title: str = ""
    shell: bool = False
    timeout: float | None = None
    retries: int | None = None
    env: dict[str, str] = {}
    writes: tuple[str, ...] = ()
    work_mode: str | None = None
    model_mode: str | None = None
    permission_profile: str | None = None
    sidecar: str = ""  # sidecar work (hook, triage, quick-task, ...): queued, not a sub-agent (behaviour §12)
    unit_type: str = ""  # the sidecar item's unit type (e.g. hook/code-review)
    error: str = ""  # set by the executor for a line it could not parse


class ModelUsage(msgspec.Struct, frozen=True):
    """What a task reported it spent on a model (see executor docs).

    ``input_tokens`` excludes cache reads and writes (the total input is
    the sum of the three); ``cost_usd`` is a cost the tool itself reported;
    ``error`` says why a usage line could not be read (the cost guard stops
    the unit on it unless told to warn)."""

    model: str = ""  # "": the model the task was handed (UOK_MODEL)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    price: UsagePrice | None = None
    error: str = ""


class OutputLog(msgspec.Struct, frozen=True, kw_only=True):
    """One stream of a turn's output as kept on disk, redacted as it was
    written: the file's path, its size and the SHA-256 of exactly those
    bytes, so an audit can vouch for the file (``uok logs`` shows it)."""

    path: str  # relative to the event log's directory, or absolute (see uok.adapters.turnlogs)
    size: int
    sha256: str


class StopRecord(msgspec.Struct, frozen=True, kw_only=True):
    """How the shell stopped a task it did not let finish: why, which
    signals reached its process group (``SIGTERM``, then ``SIGKILL`` if it
    outlived its grace period), and the grace period it was given."""

    reason: str  # timeout | heartbeat | cancel | shutdown | leftovers
    signals: tuple[str, ...] = ()
    grace_s: float = 0.0


class ExecutionFinished(Event, frozen=True, kw_only=True):
    """The executor's report of one unit attempt: observed, never decided.

    ``stdout_log`` / ``stderr_log`` (absent in logs written before output
    was kept) name the files holding the whole redacted output; the tails
    are its last 4 KiB. ``stop`` says how the shell stopped the task, when
    it did."""

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
    spawns: tuple[SpawnRequest, ...] = ()  # sub-agents the unit asked for (uok.domain.events)
    stdout_log: OutputLog | None = None
    stderr_log: OutputLog | None = None
    stop: StopRecord | None = None
    agent: AgentOutcome | None = None  # how an agent task's agent said its turn ended (docs/agents.md)
    products: dict[str, str] = {}  # the unit's declared products after it: path/glob -> present|blank|missing
    cannot_start: bool = False  # the command never started (``error`` says why): a config failure, not retried
    model: str = ""  # the model the task was handed (UOK_MODEL: its own, or routed from its model mode)


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


def dense_turns(flags: Mapping[str, Any]) -> int:
    """The ``dense_turns`` level a run recorded in ``KernelEntered.flags``
    (issue 15: fewer events per task; 0 for runs before it). From 1 on, a
    turn's ``TurnStarted`` implies its dispatch phase (:func:`implied_dispatch`)
    and no ``PhaseResult`` records it; from 2 on, a ``TurnFinished`` whose turn
    recorded no finalize phase implies the outcome's (:func:`implied_finalize`)."""
    level = flags.get("dense_turns")
    return level if isinstance(level, int) and not isinstance(level, bool) else 0


def implied_dispatch(turn: TurnStarted) -> tuple[TurnPhase, str, dict[str, Any]]:
    """(phase, action, data) of the dispatch phase a dense run's ``TurnStarted`` implies."""
    return "dispatch", "dispatched", {"attempt": turn.attempt}


def implied_finalize(finished: TurnFinished) -> str:
    """The action of the finalize phase a dense run's ``TurnFinished`` implies
    when its turn recorded none (``""``: it implies none). A turn concluded
    by the kernel's outcome rule ends ``completed`` (phase ``completed``) or
    ``retry``/``failed`` (phase ``failed``); every other ending (``stopped``:
    cancelled, held, shut down) records its own finalize phase or none."""
    return {"completed": "completed", "retry": "failed", "failed": "failed"}.get(finished.status, "")


class TurnClosed(Event, frozen=True, kw_only=True):
    """The shell finished its work for a turn (observers, gitops, token).

    With the ``turn_closeout`` flag, the run's exit waits for the
    ``TurnClosed`` of every finished turn, so ``KernelExited`` stays the
    run's last event (uok.domain.kernel.rules.closeout)."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    token_released: bool = False
    observer_errors: int = 0


class KernelExitDeferred(Event, frozen=True, kw_only=True):
    """The kernel would exit with ``status`` but turns are still closing."""

    status: KernelStatus
    error: str = ""
    waiting_for: tuple[str, ...] = ()
