"""The event vocabulary: one msgspec Struct per kind of thing that happened.

Every event class uok records is importable from here (``from uok.domain
import events as ev``; ``ev.KernelEntered``, ``ev.GateRun`` ...). The
modules group them by subject:

* :mod:`~uok.domain.events.base`: :class:`Event`, observations vs decisions;
* :mod:`~uok.domain.events.runs`: a run entering and leaving, unit
  transitions, turns;
* :mod:`~uok.domain.events.gates`: gate requests and results, breakers, costs;
* :mod:`~uok.domain.events.bus`: messages, steering, sub-agents, chaos, gitops;
* :mod:`~uok.domain.events.modes`: a run's modes changing while it runs;
* :mod:`~uok.domain.events.intents`: a unit waiting on another's read/write intents;
* :mod:`~uok.domain.events.progress`: a running task's progress report;
* :mod:`~uok.domain.events.requeue`: work that had ended, queued again;
* :mod:`~uok.domain.events.writer`: the writer token;
* :mod:`~uok.domain.events.fork`: time travel (a forked log);
* :mod:`~uok.domain.events.agents`: inside an agent's turn (its steps, its outcome);
* :mod:`~uok.domain.events.artifacts`: artifact gating (files units require);
* :mod:`~uok.domain.events.clarify`: clarify rounds (questions a task asks);
* :mod:`~uok.domain.events.claims`: workers on several hosts claiming a run's units.

A module that defines a new event must be imported here: the codec
(:mod:`uok.domain.log.codec`) knows exactly the subclasses of ``Event``
this package has loaded.
"""

from uok.domain.events.agents import STEP_KINDS, AgentOutcome, AgentStep, AgentUsage
from uok.domain.events.artifacts import ArtifactsObserved, ProductsObserved, UnitHeld
from uok.domain.events.base import Event
from uok.domain.events.bus import (
    BOUNDARIES,
    COMMANDS,
    FAULTS,
    STEER_TOPIC,
    ChaosInjected,
    Fault,
    GitTransactionRecorded,
    MessageRead,
    MessageSent,
    SidecarQueued,
    SteeringApplied,
    SteeringReceived,
    SubagentSpawned,
    kernel_inbox,
    parse_payload,
)
from uok.domain.events.claims import (
    ClaimExpired,
    ClaimRenewed,
    UnitClaimed,
    WorkerJoined,
    WorkerLeft,
    WorkerReported,
    claim_stream,
    worker_stream,
)
from uok.domain.events.clarify import ClarifyAsked, ClarifyRefused
from uok.domain.events.fork import ForkOrigin, RunForked
from uok.domain.events.gates import (
    BreakerDue,
    BreakerHeld,
    BreakerState,
    BreakerTransitioned,
    CostRecorded,
    Finding,
    GateEvaluated,
    GateMemory,
    GateOutcome,
    GateRequested,
    GateRun,
    UsageReported,
)
from uok.domain.events.intents import IntentDeclared, IntentRefused, UnitWaiting
from uok.domain.events.modes import ModeChanged
from uok.domain.events.prices import UsagePrice
from uok.domain.events.progress import ProgressReported
from uok.domain.events.requeue import RequeueCause, RetryRequest, UnitRequeued
from uok.domain.events.runs import (
    ExecutionFinished,
    FailureClass,
    KernelEntered,
    KernelExitDeferred,
    KernelExited,
    KernelFailed,
    KernelStatus,
    ModelUsage,
    OutputLog,
    PhaseResult,
    PidProbe,
    PlanCompiled,
    RunRecovered,
    SignalReceived,
    SpawnRequest,
    StopRecord,
    TurnClosed,
    TurnFinished,
    TurnPhase,
    TurnStarted,
    TurnStatus,
    UnitState,
    UnitTransitioned,
    dense_turns,
    implied_dispatch,
    implied_finalize,
)
from uok.domain.events.writer import PlanLeased, WriterTokenAcquired, WriterTokenReleased, lease_stream

__all__ = [
    "BOUNDARIES",
    "COMMANDS",
    "FAULTS",
    "STEER_TOPIC",
    "STEP_KINDS",
    "AgentOutcome",
    "AgentStep",
    "AgentUsage",
    "ArtifactsObserved",
    "BreakerDue",
    "BreakerHeld",
    "BreakerState",
    "BreakerTransitioned",
    "ChaosInjected",
    "ClaimExpired",
    "ClaimRenewed",
    "ClarifyAsked",
    "ClarifyRefused",
    "CostRecorded",
    "Event",
    "ExecutionFinished",
    "FailureClass",
    "Fault",
    "Finding",
    "ForkOrigin",
    "GateEvaluated",
    "GateMemory",
    "GateOutcome",
    "GateRequested",
    "GateRun",
    "GitTransactionRecorded",
    "IntentDeclared",
    "IntentRefused",
    "KernelEntered",
    "KernelExitDeferred",
    "KernelExited",
    "KernelFailed",
    "KernelStatus",
    "MessageRead",
    "MessageSent",
    "ModeChanged",
    "ModelUsage",
    "OutputLog",
    "PhaseResult",
    "PidProbe",
    "PlanCompiled",
    "PlanLeased",
    "ProductsObserved",
    "ProgressReported",
    "RequeueCause",
    "RetryRequest",
    "RunForked",
    "RunRecovered",
    "SidecarQueued",
    "SignalReceived",
    "SpawnRequest",
    "SteeringApplied",
    "SteeringReceived",
    "StopRecord",
    "SubagentSpawned",
    "TurnClosed",
    "TurnFinished",
    "TurnPhase",
    "TurnStarted",
    "TurnStatus",
    "UnitClaimed",
    "UnitHeld",
    "UnitRequeued",
    "UnitState",
    "UnitTransitioned",
    "UnitWaiting",
    "UsagePrice",
    "UsageReported",
    "WorkerJoined",
    "WorkerLeft",
    "WorkerReported",
    "WriterTokenAcquired",
    "WriterTokenReleased",
    "claim_stream",
    "dense_turns",
    "implied_dispatch",
    "implied_finalize",
    "kernel_inbox",
    "lease_stream",
    "parse_payload",
    "worker_stream",
]
