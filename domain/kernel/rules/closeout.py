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

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.state import KernelState


def enabled(st: KernelState) -> bool:
    return st.flags.turn_closeout


def exit_pending(st: KernelState) -> bool:
    """True while the run's exit waits for turns to close (dispatch is held)."""
    return st.closeout.pending is not None


def fold_turn_finished(st: KernelState, e: ev.TurnFinished) -> None:
    if e.run_id == st.run_id and enabled(st):
        st.closeout.closing.add(e.turn_id)


def fold_closed(st: KernelState, e: ev.TurnClosed) -> None:
    st.closeout.closing.discard(e.turn_id)


def fold_deferred(st: KernelState, e: ev.KernelExitDeferred) -> None:
    if e.run_id == st.run_id:
        st.closeout.pending = (e.status, e.error)


def fold_exited(st: KernelState, e: ev.KernelExited) -> None:
    if e.run_id == st.run_id:
        st.closeout.pending = None


def defer_exit(ctx: Context, status: ev.KernelStatus, error: str) -> bool:
    """True if the run's exit must wait for turns still closing (deciding
    ``KernelExitDeferred`` the first time it does)."""
    st = ctx.state
    if not enabled(st) or not st.closeout.closing:
        return False
    if st.closeout.pending != (status, error):
        ctx.emit(
            ev.KernelExitDeferred(
                run_id=ctx.run_id,
                at=ctx.at,
                status=status,
                error=error,
                waiting_for=tuple(sorted(st.closeout.closing)),
            )
        )
    return True


def on_closed(ctx: Context, obs: ev.TurnClosed) -> None:
    st = ctx.state
    if st.exited:
        return
    pending = st.closeout.pending
    if pending is not None and not st.closeout.closing:
        ctx.exit(*pending)
