"""Turn closeout: a run's exit waits until every finished turn is closed out.

After the kernel decides ``TurnFinished``, the shell still has work for the
turn: tell the turn observers, record the gitops ``record`` stage, give the
writer token back. Those are observations, so they are appended *after* the
batch holding the ``TurnFinished``. If that batch also held
``KernelExited`` (the last turn of a run, or a signal), they would land
after the run's exit, and "``KernelExited`` is a run's last event" would no
longer hold.

So, when the shell asks for it (flag ``turn_closeout = true`` in
``KernelEntered``, which the runner sets), the kernel:

* counts a turn as *closing* from its ``TurnFinished`` until the shell's
  ``TurnClosed`` observation for it;
* when it would exit while turns are closing, decides ``KernelExitDeferred``
  (status and error kept) instead, dispatches nothing more, and decides the
  ``KernelExited`` on the ``TurnClosed`` that closes the last one.

The deferral is a recorded decision and the closing set is a fold, so a
kernel rebuilt from the log at any position knows both. Without the flag
(a bare kernel, the unit tests) nothing changes. The runner records
``TurnClosed`` even when an observer or the token release failed, and if it
cannot record it the loop fails instead of waiting forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from uok.domain.events import KernelExitDeferred, KernelExited, TurnClosed, TurnFinished

if TYPE_CHECKING:  # pragma: no cover
    from uok.domain.kernel.kernel import Kernel

FLAG = "turn_closeout"


class CloseoutState(msgspec.Struct, kw_only=True):
    closing: set[str] = msgspec.field(default_factory=set)
    pending: tuple[str, str] | None = None  # (status, error) of the deferred exit


def enabled(k: Kernel) -> bool:
    return k.flags.get(FLAG) is True


def exit_pending(k: Kernel) -> bool:
    return k.closeout.pending is not None


def fold_turn_finished(k: Kernel, e: TurnFinished) -> None:
    if e.run_id == k.run_id and enabled(k):
        k.closeout.closing.add(e.turn_id)


def fold_closed(k: Kernel, e: TurnClosed) -> None:
    k.closeout.closing.discard(e.turn_id)


def fold_deferred(k: Kernel, e: KernelExitDeferred) -> None:
    if e.run_id == k.run_id:
        k.closeout.pending = (e.status, e.error)


def fold_exited(k: Kernel, e: KernelExited) -> None:
    if e.run_id == k.run_id:
        k.closeout.pending = None


def defer_exit(k: Kernel, status: str, error: str) -> bool:
    """Called first thing in ``Kernel._exit``: True if the exit must wait."""
    if not enabled(k) or not k.closeout.closing:
        return False
    if k.closeout.pending != (status, error):
        k.emit(
            KernelExitDeferred(
                run_id=k.run_id, at=k._at, status=status, error=error, waiting_for=tuple(sorted(k.closeout.closing))
            )
        )
    return True


def on_closed(k: Kernel, obs: TurnClosed) -> None:
    if k.exited:
        return
    pending = k.closeout.pending
    if pending is not None and not k.closeout.closing:
        k._exit(*pending)
