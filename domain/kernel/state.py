"""Everything the kernel knows, in one typed place.

The state is a fold of the log (every run's events, so retry budgets,
breakers, cost windows and pause flags survive restarts) plus the inputs
of the run this kernel drives, taken from its ``KernelEntered``. The rules
in :mod:`uok.domain.kernel.rules` read and fold into it; nothing else
writes it. Grouped by concern: the driven run, runs and units of the whole
log, and one sub-state per rule family (steering, sub-agents, closeout,
gates).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from uok.domain.config import RunFlags, run_flags
from uok.domain.events import KernelEntered, KernelStatus, SpawnRequest
from uok.domain.kernel.schedule import Schedule
from uok.domain.plan import UnitGraph, UnitNode
from uok.domain.plan.content import PlanContent
from uok.domain.policies.breaker import BreakerBook
from uok.domain.policies.cost_guard import CostLedger
from uok.domain.policies.costs import CostTable
from uok.domain.policies.lifecycle import UnitRecord


class RunInfo(msgspec.Struct, kw_only=True):
    """What the kernel knows about one run from the log."""

    run_id: str
    pid: int
    entered_at: datetime
    plan_path: str = ""
    plan_id: str = ""
    host: str = ""
    status: str = "open"  # open | ok | error | terminated | recovered
    exited_at: datetime | None = None


class TurnInfo(msgspec.Struct, kw_only=True):
    """A turn of the driven run that started and has not finished."""

    turn_id: str
    unit_id: str
    attempt: int
    started_at: datetime


class SteeringState(msgspec.Struct, kw_only=True):
    """Pause flags per plan and the steering messages already applied (rules.steering)."""

    paused: dict[str, str] = {}  # plan id -> run that paused it
    applied: set[str] = msgspec.field(default_factory=set)  # message ids already applied


class SubagentState(msgspec.Struct, kw_only=True):
    """Children spawned per plan, and requests waiting for their turn to end (rules.subagents)."""

    spawned: dict[str, list[UnitNode]] = {}  # plan id -> child nodes in spawn order
    pending: dict[str, tuple[SpawnRequest, ...]] = {}  # turn id -> requests awaiting its conclusion


class CloseoutState(msgspec.Struct, kw_only=True):
    """Turns the shell has not closed out yet, and the exit waiting for them (rules.closeout)."""

    closing: set[str] = msgspec.field(default_factory=set)
    pending: tuple[KernelStatus, str] | None = None  # (status, error) of the deferred exit


class MemoryEntry(msgspec.Struct, kw_only=True):
    """Earlier non-passing results of one failure fingerprint (memory enrichment)."""

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


class IntentState(msgspec.Struct, kw_only=True):
    """The driven plan's parallel intents (rules.intents)."""

    active: bool = False  # some unit of the driven plan declares intents (else dispatch skips the check)
    waiting: dict[str, str] = {}  # unit id -> reason of its last UnitWaiting, until it starts
    runtime: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}  # running unit -> (reads, writes) it declared


class ArtifactState(msgspec.Struct, kw_only=True):
    """The driven run's latest observation of required artifacts, and the
    hold reason announced per unit (rules.artifacts)."""

    facts: dict[str, str] = {}  # path -> present | blank | missing
    held: dict[str, str] = {}  # unit id -> reason of its last UnitHeld in this run
    gated: bool = False  # the driven plan has a unit with ``requires`` (else dispatch skips the check)


class GateState(msgspec.Struct, kw_only=True):
    """Breakers, failure memory and spend (folded from every run), and the
    driven run's gate passes (rules.gating)."""

    breakers: BreakerBook = msgspec.field(default_factory=BreakerBook)
    memory: dict[str, MemoryEntry] = {}
    costs: CostLedger = msgspec.field(default_factory=CostLedger)
    passes: dict[str, GatePass] = {}
    holds: dict[str, str] = {}  # the driven run's units held by a breaker -> its key (rules.gating.hold)
    hold_counts: dict[str, int] = {}  # how many times the driven run held each unit


class AgentState(msgspec.Struct, kw_only=True):
    """What each agent turn still executing has spent so far, as priced by
    the cost guard (rules.agents): the agent's reported total reconciles it."""

    spent: dict[str, float] = {}  # turn id -> USD recorded for it so far
    by_model: dict[str, dict[str, float]] = {}  # turn id -> model -> USD recorded so far


class KernelState(msgspec.Struct, kw_only=True):
    """The kernel's state: the driven run, the log's runs and units, and the rules' sub-states."""

    # the run this kernel drives (set from its KernelEntered)
    run_id: str = ""
    pid: int = 0
    workers: int = 1
    flags: RunFlags = msgspec.field(default_factory=RunFlags)  # KernelEntered.flags, typed once
    cost_table: CostTable = msgspec.field(default_factory=CostTable)  # bundled rows + the run's overrides
    work_mode: str = "auto"  # run defaults sub-agents inherit (rules.subagents)
    model_mode: str = "default"
    graph: UnitGraph | None = None
    nodes: dict[str, UnitNode] = {}
    iteration: int = 0
    in_flight: dict[str, TurnInfo] = {}  # turn_id -> turn
    exited: bool = False
    schedule: Schedule | None = None  # derived from graph + units, never snapshot (see scheduled())
    # folded from every run in the log
    runs: dict[str, RunInfo] = {}
    units: dict[tuple[str, str], UnitRecord] = {}
    plans: dict[str, UnitGraph] = {}  # latest compiled graph per plan id
    contents: dict[str, PlanContent] = {}  # plan id -> its latest recorded text and graph (uok.domain.plan.content)
    leases: dict[str, int] = {}  # plan id -> its last lease epoch (PlanLeased; the shell fences on it)
    # the rules' own state
    steering: SteeringState = msgspec.field(default_factory=SteeringState)
    subagents: SubagentState = msgspec.field(default_factory=SubagentState)
    closeout: CloseoutState = msgspec.field(default_factory=CloseoutState)
    gates: GateState = msgspec.field(default_factory=GateState)
    agents: AgentState = msgspec.field(default_factory=AgentState)
    artifacts: ArtifactState = msgspec.field(default_factory=ArtifactState)
    intents: IntentState = msgspec.field(default_factory=IntentState)

    def enter(self, e: KernelEntered) -> None:
        """Take the driven run's inputs from its ``KernelEntered``: the one
        place its recorded flags are read and typed."""
        self.run_id, self.pid, self.workers = e.run_id, e.pid, e.workers
        self.flags = run_flags(e.flags)
        self.cost_table = CostTable.with_overrides(list(self.flags.cost_rows))
        self.work_mode, self.model_mode = e.work_mode, e.model_mode

    def driving_the_same_run(self) -> KernelState:
        """An empty state for the run this one drives (nothing folded yet)."""
        return KernelState(
            run_id=self.run_id,
            pid=self.pid,
            workers=self.workers,
            flags=self.flags,
            cost_table=self.cost_table,
            work_mode=self.work_mode,
            model_mode=self.model_mode,
        )

    # ------------------------------------------------------------------ queries

    def open_runs(self) -> list[RunInfo]:
        return [r for r in self.runs.values() if r.status == "open"]

    def unit(self, unit_id: str) -> UnitRecord | None:
        """The record of a unit of the driven run's plan."""
        if self.graph is None:
            return None
        return self.units.get((self.graph.plan_id, unit_id))

    @staticmethod
    def is_final(rec: UnitRecord | None) -> bool:
        return rec is not None and rec.state == "notified"

    def scheduled(self) -> Schedule:
        """The driven plan's ready and doomed units, built on first use and
        then kept by ``rules.runs.fold_unit`` (dropped when the graph changes)."""
        if self.schedule is None:
            assert self.graph is not None
            self.schedule = Schedule.build(self.graph, self.nodes, self.unit)
        return self.schedule

    def in_flight_units(self) -> set[str]:
        return {t.unit_id for t in self.in_flight.values()}

    @property
    def plan_id(self) -> str:
        """The driven run's plan id ("" before its plan is compiled)."""
        return self.graph.plan_id if self.graph is not None else ""
