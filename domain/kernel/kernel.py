"""The kernel's decision core: pure, deterministic, replayable.

``Kernel.apply(event)`` folds any recorded event into the kernel's state.
``Kernel.handle(observation)`` folds an observation and returns the
decisions it leads to (already folded). The shell appends the observation
and its decisions in one transaction, then carries out their side effects
(start a subprocess, kill one). Nothing here reads a clock, a pid, a file or
a random source: all of that arrives inside observations. Replaying a run is
therefore just calling ``handle`` again on its recorded observations and
comparing what comes out (see ``replay/``).

The decision rules implemented here:

* recovery (behaviour §1, §7): a run that entered, never exited and whose pid the
  shell found dead is closed as ``recovered``; its in-flight units go
  ``stale`` and are re-queued within their retry budget;
* lifecycle (behaviour §13b) with attempts and dispatch counts taken from the
  log, and the runaway cap applied to every unit type (behaviour §18);
* dispatch (behaviour §12): ready units in topological order, no two writers of
  one file at once, at most ``workers`` in flight, a safety cap on turns;
* gates (behaviour §2, §9, §10; ``domain/kernel/gating.py``): after a unit's command
  succeeds, the cost guard and the task's gates decide its outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import msgspec
from uok.domain import events as ev
from uok.domain.kernel import chaos, coordination, forking, gating
from uok.domain.kernel.closeout import CloseoutState
from uok.domain.kernel.dispatch import DispatchRules
from uok.domain.kernel.steering import SteeringState
from uok.domain.kernel.subagents import SubagentState, readd_children, spawn_children
from uok.domain.plan import UnitGraph, UnitNode, compile_plan
from uok.domain.policies.lifecycle import IN_FLIGHT, TERMINAL, UnitRecord, check_transition


class RunInfo(msgspec.Struct, kw_only=True):
    """What the kernel knows about one run from the log."""

    run_id: str
    pid: int
    entered_at: datetime
    plan_path: str = ""
    plan_id: str = ""
    status: str = "open"  # open | ok | error | terminated | recovered
    exited_at: datetime | None = None


class TurnInfo(msgspec.Struct, kw_only=True):
    turn_id: str
    unit_id: str
    attempt: int
    started_at: datetime


class Kernel(DispatchRules):
    """Decision core for one run, fed with the whole log for context."""

    def __init__(self) -> None:
        self.runs: dict[str, RunInfo] = {}
        self.units: dict[tuple[str, str], UnitRecord] = {}
        self.plans: dict[str, UnitGraph] = {}  # latest compiled graph per plan id
        # the run this kernel drives (set by handle(KernelEntered))
        self.run_id: str = ""
        self.pid: int = 0
        self.graph: UnitGraph | None = None
        self.nodes: dict[str, UnitNode] = {}
        self.workers: int = 1
        self.flags: dict[str, Any] = {}
        self.iteration: int = 0
        self.in_flight: dict[str, TurnInfo] = {}  # turn_id -> turn
        self.exited: bool = False
        self.work_mode: str = "auto"  # run defaults sub-agents inherit (uok.domain.kernel.subagents)
        self.model_mode: str = "default"
        self.steering = SteeringState()  # pause flags per plan, applied messages (uok.domain.kernel.steering)
        self.subagents = SubagentState()  # spawned children per plan (uok.domain.kernel.subagents)
        self.closeout = CloseoutState()  # turns the shell has not closed out yet (uok.domain.kernel.closeout)
        self._out: list[ev.Event] = []
        self._at: datetime | None = None

    # ------------------------------------------------------------------ folding

    def apply(self, e: ev.Event) -> None:
        """Fold one recorded event (any run) into the state."""
        fold = _FOLDS.get(type(e))
        if fold is not None:
            fold(self, e)

    def _fold_entered(self, e: ev.KernelEntered) -> None:
        self.runs[e.run_id] = RunInfo(run_id=e.run_id, pid=e.pid, entered_at=e.at, plan_path=e.plan_path)

    def _fold_plan(self, e: ev.PlanCompiled) -> None:
        run = self.runs.get(e.run_id)
        if run is not None:
            run.plan_id = e.graph.plan_id
        self.plans[e.graph.plan_id] = e.graph
        if e.run_id == self.run_id:
            self.graph = e.graph
            self.nodes = {n.id: n for n in e.graph.nodes}
            readd_children(self)  # sub-agents earlier runs of this plan spawned

    def _fold_exited(self, e: ev.KernelExited) -> None:
        run = self.runs.get(e.run_id)
        if run is not None:
            run.status, run.exited_at = e.status, e.at
        if e.run_id == self.run_id:
            self.exited = True

    def _fold_recovered(self, e: ev.RunRecovered) -> None:
        run = self.runs.get(e.recovered_run)
        if run is not None:
            run.status, run.exited_at = "recovered", e.at

    def _fold_unit(self, e: ev.UnitTransitioned) -> None:
        key = (e.plan_id, e.unit_id)
        rec = self.units.get(key)
        if rec is None:
            rec = self.units[key] = UnitRecord(unit_id=e.unit_id, plan_id=e.plan_id)
        rec.apply(e)

    def _fold_turn_started(self, e: ev.TurnStarted) -> None:
        if e.run_id == self.run_id:
            self.iteration = max(self.iteration, e.iteration)
            self.in_flight[e.turn_id] = TurnInfo(
                turn_id=e.turn_id, unit_id=e.unit_id, attempt=e.attempt, started_at=e.at
            )

    def _fold_turn_finished(self, e: ev.TurnFinished) -> None:
        if e.run_id == self.run_id:
            self.in_flight.pop(e.turn_id, None)

    @staticmethod
    def folded_topics() -> frozenset[str]:
        """Topics (every stored version) of the event types ``apply`` folds.
        Readers skip decoding the rest: folding them would change nothing."""
        return frozenset(f"{cls.__name__}/v{v}" for cls in _FOLDS for v in range(cls.VERSION + 1))

    # ------------------------------------------------------------------ queries

    def open_runs(self) -> list[RunInfo]:
        return [r for r in self.runs.values() if r.status == "open"]

    def unit(self, unit_id: str) -> UnitRecord | None:
        if self.graph is None:
            return None
        return self.units.get((self.graph.plan_id, unit_id))

    def is_final(self, rec: UnitRecord | None) -> bool:
        return rec is not None and rec.state == "notified"

    def in_flight_units(self) -> set[str]:
        return {t.unit_id for t in self.in_flight.values()}

    # ------------------------------------------------------------------ deciding

    def handle(self, obs: ev.Event) -> list[ev.Event]:
        """Fold an observation and return the decisions it leads to."""
        if not type(obs).OBSERVED:
            raise TypeError(f"handle() takes observations, got decision {type(obs).__name__}")
        self._out = []
        self._at = obs.at
        if isinstance(obs, ev.KernelEntered):
            self.run_id, self.pid = obs.run_id, obs.pid
            self.workers = obs.workers
            self.flags = dict(obs.flags)
            self.work_mode, self.model_mode = obs.work_mode, obs.model_mode
        self.apply(obs)
        handler = _HANDLERS.get(type(obs))
        if handler is None:
            raise TypeError(f"no decision rule for {type(obs).__name__}")
        handler(self, obs)
        out, self._out = self._out, []
        return out

    def emit(self, e: ev.Event) -> None:
        """Record a decision: fold it now so later rules see it."""
        self.apply(e)
        self._out.append(e)

    def _transition(
        self,
        unit_id: str,
        to_state: str,
        *,
        plan_id: str | None = None,
        attempt: int | None = None,
        dispatches: int | None = None,
        failure_class: str = "none",
        reason: str = "",
        turn_id: str = "",
    ) -> None:
        plan_id = plan_id if plan_id is not None else self.graph.plan_id  # type: ignore[union-attr]
        rec = self.units.get((plan_id, unit_id))
        from_state = rec.state if rec else ""
        check_transition(unit_id, from_state, to_state)
        if to_state == "notified" and rec is not None:
            # the final step keeps the outcome's failure class and reason
            failure_class = rec.failure_class if failure_class == "none" else failure_class
            reason = f"{rec.reason}; {reason}" if rec.reason and reason else (reason or rec.reason)
        self.emit(
            ev.UnitTransitioned(
                run_id=self.run_id,
                at=self._at,
                plan_id=plan_id,
                unit_id=unit_id,
                from_state=from_state,
                to_state=to_state,
                attempt=attempt if attempt is not None else (rec.attempt if rec else 1),
                dispatches=dispatches if dispatches is not None else (rec.dispatches if rec else 0),
                failure_class=failure_class,
                reason=reason,
                turn_id=turn_id or (rec.turn_id if rec else ""),
            )
        )

    # -- KernelEntered ------------------------------------------------------

    def _on_entered(self, obs: ev.KernelEntered) -> None:
        for probe in obs.probes:
            run = self.runs.get(probe.run_id)
            if run is not None and run.status == "open" and not probe.alive and probe.run_id != obs.run_id:
                self._recover(run)
        graph = compile_plan(obs.plan_source, filename=obs.plan_path)
        self.emit(ev.PlanCompiled(run_id=self.run_id, at=self._at, graph=graph))
        for node in graph.nodes:
            rec = self.unit(node.id)
            if rec is None:
                self._transition(node.id, "queued", attempt=1, dispatches=0, reason="planned")
            elif rec.state == "cancelled":
                self._transition(node.id, "queued", reason="resumed after cancellation")
        coordination.on_entered(self)  # paused plan, cancelled sub-agents (uok.domain.kernel.coordination)
        self._advance()

    def _recover(self, run: RunInfo) -> None:
        stale = sorted(
            (rec for rec in self.units.values() if rec.run_id == run.run_id and rec.state in IN_FLIGHT),
            key=lambda r: (r.plan_id, r.unit_id),
        )
        self.emit(
            ev.RunRecovered(
                run_id=self.run_id,
                at=self._at,
                recovered_run=run.run_id,
                pid=run.pid,
                stale_units=tuple(r.unit_id for r in stale),
            )
        )
        for rec in stale:
            reason = f"run {run.run_id} (pid {run.pid}) died while the unit was {rec.state}"
            self._transition(rec.unit_id, "stale", plan_id=rec.plan_id, reason=reason)
            self._retry_or_finish(rec, reason=reason)

    def _retries_of(self, rec: UnitRecord) -> int:
        graph = self.plans.get(rec.plan_id)
        node = next((n for n in graph.nodes if n.id == rec.unit_id), None) if graph else None
        return node.retries if node is not None else 2

    def _retry_or_finish(self, rec: UnitRecord, *, reason: str) -> bool:
        """Re-queue a failed/stale unit if its budget allows; else make it final."""
        retries = self._retries_of(rec)
        if rec.retry_budget_remaining(retries) > 0:
            self._transition(
                rec.unit_id, "queued", plan_id=rec.plan_id, attempt=rec.attempt + 1, reason=f"retry: {reason}"
            )
            return True
        self._transition(rec.unit_id, "notified", plan_id=rec.plan_id, reason="retry budget exhausted")
        return False

    # -- ExecutionFinished --------------------------------------------------

    def _on_execution(self, obs: ev.ExecutionFinished) -> None:
        turn = self.in_flight.get(obs.turn_id)
        if turn is None or self.exited:
            return  # a cancelled turn's late report: nothing to decide
        ok = obs.exit_code == 0 and not obs.timed_out and not obs.error
        action = "timeout" if obs.timed_out else ("error" if obs.error else f"exit:{obs.exit_code}")
        self.emit(
            ev.PhaseResult(
                run_id=self.run_id,
                at=self._at,
                turn_id=turn.turn_id,
                phase="unit",
                action=action,
                data={"duration_ms": obs.duration_ms},
            )
        )
        if gating.cost_guard_stops(self, turn, obs, ok):
            pass  # the cost guard priced the usage and ended the turn (uok.domain.kernel.gating)
        elif ok:
            gating.start_gates(self, turn)  # the task's gates, then the unit's outcome
        else:
            fc = "timeout" if obs.timed_out else "execution"
            if obs.timed_out:
                reason = f"timed out after {obs.duration_ms} ms"
            elif obs.error:
                reason = obs.error
            else:
                last = obs.stderr_tail.strip().splitlines()[-1:] or [""]
                reason = f"exit code {obs.exit_code}" + (f": {last[0][:200]}" if last[0] else "")
            self._conclude(turn, success=False, failure_class=fc, reason=reason)
        self._advance()

    def _conclude(self, turn: TurnInfo, *, success: bool, failure_class: str = "none", reason: str = "") -> None:
        """End a turn: the unit's outcome, its retry, the turn-finished record."""
        rec = self.unit(turn.unit_id)
        assert rec is not None
        self.emit(
            ev.PhaseResult(
                run_id=self.run_id,
                at=self._at,
                turn_id=turn.turn_id,
                phase="finalize",
                action="completed" if success else "failed",
            )
        )
        if success:
            spawn_children(self, turn)  # sub-agents the unit asked for (uok.domain.kernel.subagents)
            self._transition(turn.unit_id, "completed", turn_id=turn.turn_id)
            self._transition(turn.unit_id, "notified")
            status = "completed"
        else:
            self._transition(turn.unit_id, "failed", failure_class=failure_class, reason=reason, turn_id=turn.turn_id)
            retried = self._retry_or_finish(rec, reason=reason)
            status = "retry" if retried else "failed"
        self._finish_turn(turn, status, failure_class=failure_class, error=reason)

    def _finish_turn(self, turn: TurnInfo, status: str, *, failure_class: str = "none", error: str = "") -> None:
        """The one ``TurnFinished`` every turn ends with, on every path."""
        self.emit(
            ev.TurnFinished(
                run_id=self.run_id,
                at=self._at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                status=status,
                failure_class=failure_class,
                error=error,
                started_at=turn.started_at,
            )
        )

    # -- signals and failures -----------------------------------------------

    def _on_signal(self, obs: ev.SignalReceived) -> None:
        self._stop(status="terminated", error=f"received {obs.signal}")

    def _on_failed(self, obs: ev.KernelFailed) -> None:
        self._stop(status="error", error=obs.error)

    def _stop(self, *, status: str, error: str) -> None:
        if self.exited:
            return
        for turn in sorted(self.in_flight.values(), key=lambda t: t.turn_id):
            rec = self.unit(turn.unit_id)
            if rec is not None and rec.state in IN_FLIGHT:
                self._transition(turn.unit_id, "cancelled", reason=error, turn_id=turn.turn_id)
            self._finish_turn(turn, "stopped", failure_class="unknown" if status == "error" else "none", error=error)
        self._exit(status, error)

    def _exit(self, status: str, error: str = "") -> None:
        if coordination.defer_exit(self, status, error):  # turns still closing (uok.domain.kernel.closeout)
            return
        completed = failed = 0
        if self.graph is not None:
            for node in self.graph.nodes:
                rec = self.unit(node.id)
                if rec is None:
                    continue
                if rec.outcome == "completed":
                    completed += 1
                elif rec.outcome in TERMINAL and rec.notified:
                    failed += 1
        self.emit(
            ev.KernelExited(
                run_id=self.run_id,
                at=self._at,
                status=status,
                pid=self.pid,
                error=error,
                units_completed=completed,
                units_failed=failed,
            )
        )


_FOLDS: dict[type, Callable[[Kernel, Any], None]] = {
    ev.KernelEntered: Kernel._fold_entered,
    ev.PlanCompiled: Kernel._fold_plan,
    ev.KernelExited: Kernel._fold_exited,
    ev.RunRecovered: Kernel._fold_recovered,
    ev.UnitTransitioned: Kernel._fold_unit,
    ev.TurnStarted: Kernel._fold_turn_started,
    ev.TurnFinished: Kernel._fold_turn_finished,
}

_HANDLERS: dict[type, Callable[[Kernel, Any], None]] = {
    ev.KernelEntered: Kernel._on_entered,
    ev.ExecutionFinished: Kernel._on_execution,
    ev.SignalReceived: Kernel._on_signal,
    ev.KernelFailed: Kernel._on_failed,
}

# bus, steering, writer-token, gitops and sub-agent rules (uok.domain.kernel.coordination)
coordination.register(_FOLDS, _HANDLERS)

# gate runner, breakers, cost guard (uok.domain.kernel.gating)
gating.install(_FOLDS, _HANDLERS)

# a fork detaches the runs open at its point (uok.domain.kernel.forking)
forking.install(_FOLDS)

# what a chaos injection decides: a partial failure fails the attempt (uok.domain.kernel.chaos)
chaos.install(_FOLDS, _HANDLERS)
