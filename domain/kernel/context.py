"""The decision context: what a rule may do while the kernel handles one observation.

A handler gets a :class:`Context` and nothing else: the kernel's state, the
observation's time (the only clock the domain knows), and the verbs every
rule is made of. ``emit`` records a decision and folds it at once, so a
later rule in the same handler sees it. The composite verbs (``conclude``,
``advance``, ``exit``, ``stop``) are rules themselves; the kernel wires
which rule implements each (:data:`uok.domain.kernel.kernel.VERBS`), so a
rule calls ``ctx.advance()`` without importing the dispatch rules, and no
two rule modules need each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from uok.domain import events as ev
from uok.domain.kernel.state import KernelState, TurnInfo
from uok.domain.policies.lifecycle import check_transition


@dataclass(frozen=True, slots=True)
class Verbs:
    """The composite verbs of a :class:`Context`, each implemented by a rule."""

    conclude: Callable[[Context, TurnInfo, bool, ev.FailureClass, str], None]
    advance: Callable[[Context], None]
    exit: Callable[[Context, ev.KernelStatus, str], None]
    stop: Callable[[Context, ev.KernelStatus, str], None]


class Context:
    """One observation being handled: the state, its time, the decisions so far."""

    __slots__ = ("_fold", "_verbs", "at", "decisions", "state")

    def __init__(self, state: KernelState, at: datetime, fold: Callable[[ev.Event], None], verbs: Verbs) -> None:
        self.state = state
        self.at = at  # the observation's time: every decision taken for it carries it
        self.decisions: list[ev.Event] = []
        self._fold, self._verbs = fold, verbs

    @property
    def run_id(self) -> str:
        return self.state.run_id

    # ------------------------------------------------------------------ primitives

    def emit(self, e: ev.Event) -> None:
        """Record a decision: fold it now so later rules see it."""
        self._fold(e)
        self.decisions.append(e)

    def phase(self, turn_id: str, phase: ev.TurnPhase, action: str, data: dict[str, Any] | None = None) -> None:
        """Record a ``PhaseResult`` of a turn."""
        self.emit(
            ev.PhaseResult(run_id=self.run_id, at=self.at, turn_id=turn_id, phase=phase, action=action, data=data or {})
        )

    def transition(
        self,
        unit_id: str,
        to_state: ev.UnitState,
        *,
        plan_id: str | None = None,
        attempt: int | None = None,
        dispatches: int | None = None,
        failure_class: ev.FailureClass = "none",
        reason: str = "",
        turn_id: str = "",
    ) -> None:
        """Move a unit (of the driven run's plan unless ``plan_id``) to its
        next lifecycle state; attempts, dispatch counts and the turn carry
        over from its record unless given. Raises on an illegal transition."""
        plan_id = plan_id if plan_id is not None else self.state.plan_id
        rec = self.state.units.get((plan_id, unit_id))
        from_state = rec.state if rec else ""
        check_transition(unit_id, from_state, to_state)
        if to_state == "notified" and rec is not None:
            # the final step keeps the outcome's failure class and reason
            failure_class = rec.failure_class if failure_class == "none" else failure_class
            reason = f"{rec.reason}; {reason}" if rec.reason and reason else (reason or rec.reason)
        self.emit(
            ev.UnitTransitioned(
                run_id=self.run_id,
                at=self.at,
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

    def finish_turn(
        self, turn: TurnInfo, status: ev.TurnStatus, *, failure_class: ev.FailureClass = "none", error: str = ""
    ) -> None:
        """The one ``TurnFinished`` every turn ends with, on every path."""
        self.emit(
            ev.TurnFinished(
                run_id=self.run_id,
                at=self.at,
                turn_id=turn.turn_id,
                unit_id=turn.unit_id,
                status=status,
                failure_class=failure_class,
                error=error,
                started_at=turn.started_at,
            )
        )

    # ------------------------------------------------------------------ composite verbs

    def conclude(
        self, turn: TurnInfo, *, success: bool, failure_class: ev.FailureClass = "none", reason: str = ""
    ) -> None:
        """End a turn: the unit's outcome, its retry, the turn-finished record (rules.outcome)."""
        self._verbs.conclude(self, turn, success, failure_class, reason)

    def advance(self) -> None:
        """Dispatch what can run, settle what never can, exit when done (rules.dispatch)."""
        self._verbs.advance(self)

    def exit(self, status: ev.KernelStatus, error: str = "") -> None:
        """End the run with ``KernelExited``, or defer it while turns are closing (rules.closeout)."""
        self._verbs.exit(self, status, error)

    def stop(self, *, status: ev.KernelStatus, error: str) -> None:
        """Cancel what runs and exit (a signal, a failure, the loop cap; rules.closeout)."""
        self._verbs.stop(self, status, error)
