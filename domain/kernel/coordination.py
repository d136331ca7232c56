"""Wires the bus, steering, writer-token, gitops and sub-agent rules into the kernel.

``uok.domain.kernel`` keeps its decision loop; this module adds to its fold and
handler tables (``register``) so the rules live beside their concepts
(``uok.domain.kernel.steering``, ``uok.domain.kernel.subagents``) and the kernel file only carries
one-line hooks.

It also adds the turn-closeout rule (``uok.domain.kernel.closeout``): with the runner's
``turn_closeout`` flag, the run's exit waits for the shell's ``TurnClosed``
of every finished turn, so ``KernelExited`` stays the run's last event.

Observations the kernel accepts but decides nothing about:

* ``WriterTokenAcquired`` / ``WriterTokenReleased``: the token lifecycle is
  the shell's (``uok.adapters.writer``); recording them through ``handle`` keeps
  every observation of a run replayable;
* ``GitTransactionRecorded``: gitops stages are best effort and never change
  a decision (a git failure is recorded, the turn carries on);
* ``MessageSent`` / ``MessageRead``: the bus is a fold of its own
  (``uok.projections.inbox``); steering reaches the kernel as ``SteeringReceived``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from uok.domain import events as ev
from uok.domain.events import (
    GitTransactionRecorded,
    MessageRead,
    MessageSent,
    SteeringApplied,
    SteeringReceived,
    SubagentSpawned,
)  # fmt: skip
from uok.domain.kernel import closeout, steering, subagents

Table = dict[type, Callable[[Any, Any], None]]


def _nothing_to_decide(_kernel: Any, _obs: Any) -> None:
    return None


def _chain(table: Table, cls: type, fn: Callable[[Any, Any], None]) -> None:
    """Add ``fn`` to ``table[cls]``, after whatever is there (other modules may fold the same type)."""
    before = table.get(cls)
    if before is None or before is fn:
        table[cls] = fn
        return

    def both(k: Any, e: Any) -> None:
        before(k, e)
        fn(k, e)

    table[cls] = both


def register(folds: Table, handlers: Table) -> None:
    _chain(folds, SteeringApplied, steering.fold_applied)
    _chain(folds, SubagentSpawned, subagents.fold_spawned)
    _chain(folds, ev.ExecutionFinished, subagents.fold_execution)
    _chain(folds, ev.TurnFinished, subagents.fold_turn_finished)
    _chain(folds, ev.TurnFinished, closeout.fold_turn_finished)
    _chain(folds, closeout.TurnClosed, closeout.fold_closed)
    _chain(folds, closeout.KernelExitDeferred, closeout.fold_deferred)
    _chain(folds, ev.KernelExited, closeout.fold_exited)
    handlers.setdefault(SteeringReceived, steering.on_steering)
    handlers.setdefault(closeout.TurnClosed, closeout.on_closed)
    for cls in (ev.WriterTokenAcquired, ev.WriterTokenReleased, GitTransactionRecorded, MessageSent, MessageRead):
        handlers.setdefault(cls, _nothing_to_decide)


def on_entered(k: Any) -> None:
    """End of ``Kernel._on_entered``, before the first dispatch."""
    subagents.requeue_cancelled_children(k)
    steering.on_entered(k)


def dispatch_held(k: Any) -> bool:
    """True while dispatch is held: the plan is paused, or the run is exiting."""
    return steering.is_paused(k) or closeout.exit_pending(k)


def defer_exit(k: Any, status: str, error: str) -> bool:
    """First thing in ``Kernel._exit``: wait for turns still closing (uok.domain.kernel.closeout)."""
    return closeout.defer_exit(k, status, error)
