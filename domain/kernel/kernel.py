"""The kernel's decision core: pure, deterministic, replayable.

``Kernel.apply(event)`` folds any recorded event into the kernel's state.
``Kernel.handle(observation)`` folds an observation and returns the
decisions it leads to (already folded). The shell appends the observation
and its decisions in one transaction, then carries out their side effects
(start a subprocess, kill one). Nothing here reads a clock, a pid, a file or
a random source: all of that arrives inside observations. Replaying a run is
therefore just calling ``handle`` again on its recorded observations and
comparing what comes out (see ``uok.replay``).

The whole kernel is three things:

* its state, :class:`~uok.domain.kernel.state.KernelState` (explicit, typed);
* :data:`RULES`, the one table saying which folds and which handler serve
  each event type, in order (a type may have several folds; they run in the
  order listed, and determinism depends on that order);
* the decision context a handler receives
  (:class:`~uok.domain.kernel.context.Context`), whose composite verbs are
  wired here (:data:`VERBS`).

The rules themselves live in :mod:`uok.domain.kernel.rules`, one concept per
module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import msgspec
from uok.domain import events as ev
from uok.domain.kernel.context import Context, Verbs
from uok.domain.kernel.rules import (
    agents,
    artifacts,
    chaos,
    closeout,
    dispatch,
    entry,
    execution,
    forking,
    gate_history,
    gating,
    intents,
    outcome,
    pricing,
    progress,
    runs,
    shutdown,
    steering,
    subagents,
)
from uok.domain.kernel.state import KernelState, RunInfo
from uok.domain.plan import UnitNode
from uok.domain.policies.lifecycle import UnitRecord
from uok.domain.policies.modes import node_modes

FoldFn = Callable[[KernelState, Any], None]
HandleFn = Callable[[Context, Any], None]


class Fold(NamedTuple):
    """``fn(state, event)`` folds every recorded ``event`` of this type."""

    event: type[ev.Event]
    fn: FoldFn


class Handle(NamedTuple):
    """``fn(ctx, observation)`` decides what an observation of this type leads to."""

    event: type[ev.Event]
    fn: HandleFn


def nothing_to_decide(ctx: Context, obs: ev.Event) -> None:
    """Observations the kernel records but decides nothing about:

    * ``PlanLeased``: the shell fences a plan's writers on its epoch
      (``uok.adapters.runner``); the kernel only folds the last epoch;
    * ``WriterTokenAcquired`` / ``WriterTokenReleased``: the token lifecycle is
      the shell's (``uok.adapters.writer``); recording them through ``handle``
      keeps every observation of a run replayable;
    * ``GitTransactionRecorded``: gitops stages are best effort and never
      change a decision (a git failure is recorded, the turn carries on);
    * ``MessageSent`` / ``MessageRead``: the bus is a fold of its own
      (``uok.projections.inbox``); steering reaches the kernel as
      ``SteeringReceived``;
    * the claim events of workers (``UnitClaimed``, ``ClaimRenewed``,
      ``WorkerReported``, ``ClaimExpired``, ``WorkerJoined``/``Left``):
      workers append them when they like, so the kernel folds nothing of
      them; the coordinator admits a report (or a lost lease) as an
      ``ExecutionFinished`` (``uok.domain.events.claims``).
    """


RULES: tuple[Fold | Handle, ...] = (
    # a run enters, compiles its plan, ends
    Fold(ev.KernelEntered, runs.fold_entered),
    Fold(ev.KernelEntered, gating.fold_entered_holds),
    Fold(ev.KernelEntered, artifacts.fold_entered),
    Handle(ev.KernelEntered, entry.on_entered),
    Fold(ev.PlanCompiled, runs.fold_plan),
    Fold(ev.PlanCompiled, subagents.fold_plan),  # the children earlier runs spawned
    Fold(ev.PlanCompiled, intents.fold_plan),
    Fold(ev.PlanCompiled, artifacts.fold_plan),  # does the plan gate anything on artifacts
    Fold(ev.RunRecovered, runs.fold_recovered),
    Fold(ev.RunForked, forking.fold_forked),
    Fold(ev.KernelExited, runs.fold_exited),
    Fold(ev.KernelExited, closeout.fold_exited),
    Handle(ev.SignalReceived, shutdown.on_signal),
    Handle(ev.KernelFailed, shutdown.on_failed),
    # units and turns
    Fold(ev.UnitTransitioned, runs.fold_unit),
    Fold(ev.TurnStarted, runs.fold_turn_started),
    Fold(ev.TurnStarted, intents.fold_started),
    Fold(ev.ExecutionFinished, subagents.fold_execution),  # spawn requests wait for the turn's end
    Fold(ev.ExecutionFinished, agents.fold_execution),
    Handle(ev.ExecutionFinished, execution.on_execution),
    Handle(ev.ProductsObserved, execution.on_products),  # a complete-slice's products (behaviour §13)
    Fold(ev.TurnFinished, runs.fold_turn_finished),
    Fold(ev.TurnFinished, intents.fold_finished),
    Fold(ev.TurnFinished, subagents.fold_turn_finished),
    Fold(ev.TurnFinished, closeout.fold_turn_finished),
    Fold(ev.TurnFinished, gate_history.fold_costs),
    Fold(ev.TurnFinished, gating.fold_turn_finished),
    Fold(ev.TurnClosed, closeout.fold_closed),
    Handle(ev.TurnClosed, closeout.on_closed),
    Fold(ev.KernelExitDeferred, closeout.fold_deferred),
    # gates, breakers, costs
    Fold(ev.GateRequested, gate_history.fold_breaker),
    Fold(ev.GateRequested, gating.fold_requested),
    Fold(ev.GateRun, gate_history.fold_breaker),
    Fold(ev.GateRun, gating.fold_result),
    Fold(ev.GateRun, gate_history.fold_memory),
    Fold(ev.BreakerTransitioned, gate_history.fold_breaker),
    Fold(ev.BreakerTransitioned, gating.fold_breaker_moved),  # releases the units it held
    Fold(ev.BreakerHeld, gating.fold_held),
    Fold(ev.CostRecorded, gate_history.fold_costs),
    Fold(ev.CostRecorded, agents.fold_cost),
    Handle(ev.GateEvaluated, gating.on_evaluated),
    Handle(ev.BreakerDue, gating.on_due),  # a held unit's breaker may let a probe through now
    Handle(ev.UsageReported, pricing.on_usage_reported),  # usage read while the task runs (issue 13)
    # steering, sub-agents, chaos
    Fold(ev.SteeringApplied, steering.fold_applied),
    Fold(ev.ModeChanged, steering.fold_mode),
    Fold(ev.UnitWaiting, intents.fold_waiting),
    Fold(ev.IntentDeclared, intents.fold_declared),
    Handle(ev.SteeringReceived, steering.on_steering),
    Fold(ev.SubagentSpawned, subagents.fold_spawned),
    Fold(ev.SidecarQueued, subagents.fold_sidecar),  # sidecar work a unit queued (behaviour §12)
    Handle(ev.ChaosInjected, chaos.on_injected),
    # inside an agent's turn: its steps, priced and judged as they stream
    Fold(ev.AgentStep, agents.fold_step),
    Handle(ev.AgentStep, agents.on_step),
    Handle(ev.ProgressReported, progress.on_progress),  # the unit enters progress
    # artifact gating (behaviour §11)
    Fold(ev.ArtifactsObserved, artifacts.fold_observed),
    Handle(ev.ArtifactsObserved, artifacts.on_observed),
    Fold(ev.UnitHeld, artifacts.fold_held),
    # recorded, nothing to decide
    Fold(ev.PlanLeased, runs.fold_leased),  # recorded with its run's KernelEntered
    Handle(ev.PlanLeased, nothing_to_decide),
    Handle(ev.WriterTokenAcquired, nothing_to_decide),
    Handle(ev.WriterTokenReleased, nothing_to_decide),
    Handle(ev.GitTransactionRecorded, nothing_to_decide),
    Handle(ev.MessageSent, nothing_to_decide),
    Handle(ev.MessageRead, nothing_to_decide),
    Handle(ev.ClarifyAsked, nothing_to_decide),  # counted from the log by `uok clarify` (behaviour §11)
    Handle(ev.ClarifyRefused, nothing_to_decide),
    Handle(ev.WorkerJoined, nothing_to_decide),  # workers on several hosts (uok.domain.events.claims)
    Handle(ev.WorkerLeft, nothing_to_decide),
    Handle(ev.UnitClaimed, nothing_to_decide),
    Handle(ev.ClaimRenewed, nothing_to_decide),
    Handle(ev.ClaimExpired, nothing_to_decide),  # recorded before the failed ExecutionFinished it causes
    Handle(ev.WorkerReported, nothing_to_decide),  # admitted by the coordinator as an ExecutionFinished
)
"""Which folds and which handler serve each event type, in order."""

VERBS = Verbs(
    conclude=outcome.conclude,
    advance=dispatch.advance,
    exit=shutdown.exit_run,
    stop=shutdown.stop,
)
"""Which rule implements each composite verb of the decision context."""


def _compile(rules: Iterable[Fold | Handle]) -> tuple[dict[type[ev.Event], FoldFn], dict[type[ev.Event], HandleFn]]:
    """The lookup tables of :data:`RULES`: one fold per type (its folds run
    in the order listed), one handler per observation type."""
    folds: dict[type[ev.Event], list[FoldFn]] = {}
    handlers: dict[type[ev.Event], HandleFn] = {}
    for rule in rules:
        if isinstance(rule, Fold):
            folds.setdefault(rule.event, []).append(rule.fn)
            continue
        if not rule.event.OBSERVED:
            raise TypeError(f"{rule.event.__name__} is a decision: only observations are handled")
        if rule.event in handlers:
            raise TypeError(f"{rule.event.__name__} has two handlers")
        handlers[rule.event] = rule.fn
    return {t: _in_order(tuple(fns)) for t, fns in folds.items()}, handlers


def _in_order(fns: tuple[FoldFn, ...]) -> FoldFn:
    if len(fns) == 1:
        return fns[0]  # most types: one call, as cheap as folding gets

    def fold_all(st: KernelState, e: Any) -> None:
        for fn in fns:
            fn(st, e)

    return fold_all


_FOLDS, _HANDLERS = _compile(RULES)


class Kernel:
    """Decision core for one run, fed with the whole log for context."""

    def __init__(self, state: KernelState | None = None) -> None:
        self.state = state if state is not None else KernelState()

    # ------------------------------------------------------------------ folding

    def apply(self, e: ev.Event) -> None:
        """Fold one recorded event (any run) into the state."""
        fold = _FOLDS.get(type(e))
        if fold is not None:
            fold(self.state, e)

    @staticmethod
    def folded_topics() -> frozenset[str]:
        """Topics (every stored version) of the event types ``apply`` folds.
        Readers skip decoding the rest: folding them would change nothing."""
        return frozenset(f"{cls.__name__}/v{v}" for cls in _FOLDS for v in range(cls.VERSION + 1))

    # ------------------------------------------------------------------ deciding

    def handle(self, obs: ev.Event) -> list[ev.Event]:
        """Fold an observation and return the decisions it leads to."""
        if not type(obs).OBSERVED:
            raise TypeError(f"handle() takes observations, got decision {type(obs).__name__}")
        if isinstance(obs, ev.KernelEntered):
            self.state.enter(obs)
        self.apply(obs)
        handler = _HANDLERS.get(type(obs))
        if handler is None:
            raise TypeError(f"no decision rule for {type(obs).__name__}")
        ctx = Context(self.state, obs.at, self.apply, VERBS)
        handler(ctx, obs)
        return ctx.decisions

    # ------------------------------------------------------------------ for the shell

    def fresh(self) -> Kernel:
        """A kernel driving the same run with nothing folded yet. The shell
        refolds the log into it after a failed append, so what follows is
        decided on what was recorded."""
        return Kernel(self.state.driving_the_same_run())

    def open_runs(self) -> list[RunInfo]:
        """Runs of the log that entered and never exited (nor were recovered)."""
        return self.state.open_runs()

    def has_entered(self, run_id: str) -> bool:
        """True if ``run_id``'s ``KernelEntered`` has been folded."""
        return run_id in self.state.runs

    def unit(self, unit_id: str) -> UnitRecord | None:
        """The lifecycle record of a unit of the driven run's plan."""
        return self.state.unit(unit_id)

    def node(self, unit_id: str) -> UnitNode:
        """A unit of the driven run's plan (children spawned so far included)."""
        return self.state.nodes[unit_id]

    @property
    def exited(self) -> bool:
        """True once the driven run's ``KernelExited`` was decided."""
        return self.state.exited

    def settled_units(self) -> int:
        """How many of the plan's units are final (for progress displays)."""
        st = self.state
        if st.graph is None:
            return 0
        return len(st.graph.nodes) - st.scheduled().unsettled

    def unit_tally(self) -> tuple[int, int]:
        """How many of the plan's units completed, and how many ended
        otherwise (failed, blocked, cancelled, …), for progress displays
        (kept by the schedule: the display asks after every step)."""
        st = self.state
        if st.graph is None:
            return 0, 0
        s = st.scheduled()
        return s.completed, s.ended_badly

    def is_in_flight(self, turn_id: str) -> bool:
        """True if the turn started and has not finished."""
        return turn_id in self.state.in_flight

    def awaits_gate(self, turn_id: str, gate_id: str, attempt: int) -> bool:
        """True if the turn is in flight and waits for exactly this gate attempt."""
        return self.is_in_flight(turn_id) and gating.awaited(self.state, turn_id, gate_id, attempt) is not None

    def dispatched_node(self, unit_id: str, planned: UnitNode | None = None) -> UnitNode:
        """A unit as the shell runs it now (``planned``: the shell's own copy
        of it, else the kernel's): its metadata carries its effective modes
        (its own overrides over the run's current modes, which a steering
        ``mode`` message may have changed; behaviour §5)."""
        node = planned if planned is not None else self.state.nodes[unit_id]
        modes = node_modes(node.metadata, subagents.run_defaults(self.state))
        return msgspec.structs.replace(node, metadata={**node.metadata, **modes})

    def with_graph(self, e: ev.PlanCompiled) -> ev.PlanCompiled:
        """``e`` carrying its graph: a ``PlanCompiled`` that references an
        earlier one's graph (uok.domain.plan.content) gets it from the state."""
        if e.graph is not None:
            return e
        return msgspec.structs.replace(e, graph=runs.compiled_graph(self.state, e))

    def steering_applied(self, message_id: str) -> bool:
        """True if a steering message was applied already (a duplicate is ignored)."""
        return message_id in self.state.steering.applied
