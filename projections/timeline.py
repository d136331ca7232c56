"""One run as a timeline: its turns with their phases, gate runs, execution
and cost, plus the marks between them (chaos, steering, breakers, exit).

A pure fold of the run's own events (its stream, ``run:<id>``), read on
demand for one run at a time by the web view, ``uok report`` and ``uok
trace``. It is not a stored read model like those of
:mod:`uok.projections.registry`: a timeline is large (every phase, output
tail and gate rationale of the run) and only ever wanted for one run, so
folding that run's stream up to a position costs in proportion to the run,
not to the log. Unit states, runs and costs "as of P" still come from the
registered read models (``ProjectionRunner.state_at``); this fold only adds
what they do not keep.

Times are the events' own ``at`` readings; positions are log positions, so
every bar of a timeline can link to the log as of its start or finish.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from uok.domain import events as ev
from uok.domain.events import (
    BreakerTransitioned,
    ChaosInjected,
    CostRecorded,
    GateRun,
    KernelExitDeferred,
    SteeringApplied,
    SubagentSpawned,
    TurnClosed,
)
from uok.domain.plan.model import UnitGraph, UnitNode


class PhaseView(msgspec.Struct, kw_only=True):
    phase: str
    action: str
    at: datetime
    position: int
    data: dict[str, Any] = {}


class GateAttemptView(msgspec.Struct, kw_only=True):
    gate_id: str
    gate_type: str
    attempt: int
    max_attempts: int
    outcome: str
    at: datetime
    position: int
    failure_class: str = "none"
    rationale: str = ""
    duration_ms: int = 0
    short_circuited: bool = False
    findings: int = 0
    breaker_state: str = ""


class UsageView(msgspec.Struct, kw_only=True):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class ExecutionView(msgspec.Struct, kw_only=True):
    at: datetime
    position: int
    exit_code: int | None
    duration_ms: int
    timed_out: bool = False
    error: str = ""
    stdout_tail: str = ""
    stderr_tail: str = ""
    usage: list[UsageView] = []


class CostView(msgspec.Struct, kw_only=True):
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    priced: bool = True


class StepView(msgspec.Struct, kw_only=True):
    """One ``AgentStep`` of an agent turn, as a page shows it (docs/agents.md)."""

    seq: int
    kind: str
    at: datetime | None = None
    tool_id: str = ""
    text: str = ""  # inline (redacted; the first 1,000 characters when ``blob``)
    blob: str = ""
    tool: str = ""
    args: str = ""
    is_error: bool = False
    duration_ms: int | None = None
    files: tuple[str, ...] = ()
    usage: str = ""  # "model: N in / M out" for a usage step
    cost_usd: float | None = None
    subtype: str = ""
    position: int = 0


class TurnDetail(msgspec.Struct, kw_only=True):
    turn_id: str
    unit_id: str
    unit_type: str
    attempt: int
    iteration: int
    started_at: datetime
    started_position: int
    status: str = "running"  # a TurnFinished status once finished
    finished_at: datetime | None = None
    finished_position: int = 0
    failure_class: str = "none"
    error: str = ""
    closed: bool = False
    phases: list[PhaseView] = []
    gates: list[GateAttemptView] = []
    execution: ExecutionView | None = None
    costs: list[CostView] = []
    steps: list[StepView] = []  # an agent turn's steps, in stream order

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def cost_usd(self) -> float:
        return sum(c.cost_usd for c in self.costs)

    @property
    def tokens(self) -> tuple[int, int]:
        return sum(c.input_tokens for c in self.costs), sum(c.output_tokens for c in self.costs)


class Mark(msgspec.Struct, kw_only=True):
    """Something that happened at one instant: ``kind`` is ``chaos``,
    ``pause``, ``resume``, ``steering``, ``breaker``, ``signal``,
    ``exit-deferred``, ``failed`` or ``exit``."""

    kind: str
    at: datetime
    position: int
    label: str
    turn_id: str = ""
    unit_id: str = ""
    gate_id: str = ""


class RunTimeline(msgspec.Struct, kw_only=True):
    run_id: str
    position: int = 0  # the last position folded
    last_at: datetime | None = None  # the latest event time folded (the right edge of an open run)
    entered_at: datetime | None = None
    entered_position: int = 0
    exited_at: datetime | None = None
    exit_position: int = 0
    status: str = "open"
    error: str = ""
    pid: int = 0
    host: str = ""
    plan_path: str = ""
    workers: int = 0
    dense_turns: int = 0  # the run's flag: its TurnStarted implies the dispatch phase (not recorded)
    graph: UnitGraph | None = None
    spawned: list[UnitNode] = []  # sub-agent units added while the run ran
    turns: dict[str, TurnDetail] = {}  # in start order
    marks: list[Mark] = []

    @property
    def plan_id(self) -> str:
        return self.graph.plan_id if self.graph is not None else ""

    def nodes(self) -> list[UnitNode]:
        """The plan's units in plan order, then the spawned ones."""
        return [*(self.graph.nodes if self.graph is not None else ()), *self.spawned]

    def turns_of(self, unit_id: str) -> list[TurnDetail]:
        return [t for t in self.turns.values() if t.unit_id == unit_id]


TOPICS = frozenset(
    {
        "KernelEntered",
        "PlanCompiled",
        "TurnStarted",
        "PhaseResult",
        "ExecutionFinished",
        "GateRun",
        "CostRecorded",
        "AgentStep",
        "TurnFinished",
        "TurnClosed",
        "ChaosInjected",
        "SteeringApplied",
        "SubagentSpawned",
        "BreakerTransitioned",
        "SignalReceived",
        "KernelFailed",
        "KernelExitDeferred",
        "KernelExited",
        "RunRecovered",
    }
)
"""The event types the fold reads (every other event of the run is skipped)."""


class TimelineFold:
    """Folds one run's events, in log order, into its :class:`RunTimeline`."""

    def __init__(self, run_id: str, timeline: RunTimeline | None = None):
        self.timeline = timeline or RunTimeline(run_id=run_id)
        self.seen = 0  # the position the caller has read the log up to (events of other runs included)
        self._handlers: dict[type[ev.Event], Callable[[int, Any], None]] = {
            ev.KernelEntered: self._entered,
            ev.PlanCompiled: self._compiled,
            ev.TurnStarted: self._turn_started,
            ev.PhaseResult: self._phase,
            ev.ExecutionFinished: self._execution,
            GateRun: self._gate,
            CostRecorded: self._cost,
            ev.AgentStep: self._step,
            ev.TurnFinished: self._turn_finished,
            TurnClosed: self._closed,
            ChaosInjected: self._chaos,
            SteeringApplied: self._steering,
            SubagentSpawned: self._spawned,
            BreakerTransitioned: self._breaker,
            ev.SignalReceived: self._signal,
            ev.KernelFailed: self._failed,
            KernelExitDeferred: self._deferred,
            ev.KernelExited: self._exited,
            ev.RunRecovered: self._recovered,
        }

    def fold(self, position: int, e: ev.Event) -> None:
        t = self.timeline
        handler = self._handlers.get(type(e))
        if handler is None:
            return
        if type(e) is ev.RunRecovered:
            if e.recovered_run != t.run_id:
                return
        elif e.run_id != t.run_id:
            return
        t.position = max(t.position, position)
        if t.last_at is None or e.at > t.last_at:
            t.last_at = e.at
        handler(position, e)

    def fold_all(self, events) -> RunTimeline:
        for position, e in events:
            self.fold(position, e)
        return self.timeline

    # -- the run ---------------------------------------------------------------
    def _entered(self, p: int, e: ev.KernelEntered) -> None:
        t = self.timeline
        t.entered_at, t.entered_position = e.at, p
        t.pid, t.host, t.plan_path, t.workers = e.pid, e.host, e.plan_path, e.workers
        t.dense_turns = ev.dense_turns(e.flags)

    def _compiled(self, p: int, e: ev.PlanCompiled) -> None:
        self.timeline.graph = e.graph

    def _spawned(self, p: int, e: SubagentSpawned) -> None:
        if e.node is not None:
            self.timeline.spawned.append(e.node)

    def _mark(self, kind: str, p: int, e: ev.Event, label: str, **kw: str) -> None:
        self.timeline.marks.append(Mark(kind=kind, at=e.at, position=p, label=label, **kw))

    def _chaos(self, p: int, e: ChaosInjected) -> None:
        what = f"{e.fault} at {e.boundary}" + (f" ({e.magnitude:g})" if e.magnitude else "")
        self._mark("chaos", p, e, what, turn_id=e.turn_id, unit_id=e.unit_id, gate_id=e.gate_id)

    def _steering(self, p: int, e: SteeringApplied) -> None:
        kind = "pause" if e.paused is True else "resume" if e.paused is False else "steering"
        label = f"{e.command}{' ' + e.argument if e.argument else ''}: {e.outcome}".strip()
        self._mark(kind, p, e, label)

    def _breaker(self, p: int, e: BreakerTransitioned) -> None:
        label = f"{e.gate_id}: {e.from_state} -> {e.to_state}" + (f" ({e.reason})" if e.reason else "")
        self._mark("breaker", p, e, label, gate_id=e.gate_id)

    def _signal(self, p: int, e: ev.SignalReceived) -> None:
        self._mark("signal", p, e, e.signal)

    def _failed(self, p: int, e: ev.KernelFailed) -> None:
        self._mark("failed", p, e, e.error)

    def _deferred(self, p: int, e: KernelExitDeferred) -> None:
        self._mark("exit-deferred", p, e, f"exit {e.status} waits for {len(e.waiting_for)} turn(s) to close")

    def _exited(self, p: int, e: ev.KernelExited) -> None:
        t = self.timeline
        t.exited_at, t.exit_position, t.status, t.error = e.at, p, e.status, e.error
        self._mark("exit", p, e, e.status + (f": {e.error}" if e.error else ""))

    def _recovered(self, p: int, e: ev.RunRecovered) -> None:
        t = self.timeline
        t.exited_at, t.exit_position, t.status = e.at, p, "recovered"
        t.error = f"recovered by {e.run_id}: pid {e.pid} dead"
        self._mark("exit", p, e, t.error)

    # -- turns -----------------------------------------------------------------
    def _turn(self, turn_id: str) -> TurnDetail | None:
        return self.timeline.turns.get(turn_id)

    def _turn_started(self, p: int, e: ev.TurnStarted) -> None:
        self.timeline.turns[e.turn_id] = TurnDetail(
            turn_id=e.turn_id,
            unit_id=e.unit_id,
            unit_type=e.unit_type,
            attempt=e.attempt,
            iteration=e.iteration,
            started_at=e.at,
            started_position=p,
        )
        if self.timeline.dense_turns >= 1:  # the dispatch phase the run did not record: TurnStarted says it
            phase, action, data = ev.implied_dispatch(e)
            self.timeline.turns[e.turn_id].phases.append(
                PhaseView(phase=phase, action=action, at=e.at, position=p, data=data)
            )

    def _phase(self, p: int, e: ev.PhaseResult) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            turn.phases.append(PhaseView(phase=e.phase, action=e.action, at=e.at, position=p, data=dict(e.data)))

    def _execution(self, p: int, e: ev.ExecutionFinished) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            turn.execution = ExecutionView(
                at=e.at,
                position=p,
                exit_code=e.exit_code,
                duration_ms=e.duration_ms,
                timed_out=e.timed_out,
                error=e.error,
                stdout_tail=e.stdout_tail,
                stderr_tail=e.stderr_tail,
                usage=[
                    UsageView(model=u.model, input_tokens=u.input_tokens, output_tokens=u.output_tokens)
                    for u in e.usage
                ],
            )

    def _gate(self, p: int, e: GateRun) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            turn.gates.append(
                GateAttemptView(
                    gate_id=e.gate_id,
                    gate_type=e.gate_type,
                    attempt=e.attempt,
                    max_attempts=e.max_attempts,
                    outcome=e.outcome,
                    at=e.at,
                    position=p,
                    failure_class=e.failure_class,
                    rationale=e.rationale,
                    duration_ms=e.duration_ms,
                    short_circuited=e.short_circuited,
                    findings=len(e.findings),
                    breaker_state=e.breaker_state,
                )
            )

    def _cost(self, p: int, e: CostRecorded) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            turn.costs.append(
                CostView(
                    model=e.model,
                    input_tokens=e.input_tokens,
                    output_tokens=e.output_tokens,
                    cost_usd=e.cost_usd,
                    priced=e.priced,
                )
            )

    def _step(self, p: int, e: ev.AgentStep) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            u = e.usage
            turn.steps.append(
                StepView(
                    seq=e.seq,
                    kind=e.kind,
                    at=e.at,
                    tool_id=e.tool_id,
                    text=e.text,
                    blob=e.blob,
                    tool=e.tool,
                    args=e.args,
                    is_error=e.is_error,
                    duration_ms=e.duration_ms,
                    files=e.files,
                    usage=f"{u.model}: {u.input_tokens} in / {u.output_tokens} out" if u is not None else "",
                    cost_usd=e.cost_usd,
                    subtype=e.subtype,
                    position=p,
                )
            )

    def _turn_finished(self, p: int, e: ev.TurnFinished) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            implied = ev.implied_finalize(e) if self.timeline.dense_turns >= 2 else ""
            if implied and not any(ph.phase == "finalize" for ph in turn.phases):  # said by TurnFinished
                turn.phases.append(PhaseView(phase="finalize", action=implied, at=e.at, position=p))
            turn.status, turn.failure_class, turn.error = e.status, e.failure_class, e.error
            turn.finished_at, turn.finished_position = e.at, p

    def _closed(self, p: int, e: TurnClosed) -> None:
        turn = self._turn(e.turn_id)
        if turn is not None:
            turn.closed = True


def topics() -> list[str]:
    """Every stored topic of :data:`TOPICS` (older versions included)."""
    from uok.projections.runner import topics_of

    return topics_of(TOPICS)
