"""How a run ends.

* ``exit``: ``KernelExited`` with the run's tallies (units completed, units
  that ended final otherwise), unless turns are still closing
  (``rules.closeout``), in which case the exit is deferred;
* ``stop`` (a signal, a failure of the shell, the loop cap): every turn in
  flight is cancelled and finished ``stopped``, then the run exits. A
  SIGTERM leaves the units ``cancelled`` for the next run to resume.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.closeout import defer_exit
from uok.domain.policies.lifecycle import IN_FLIGHT, TERMINAL


def on_signal(ctx: Context, obs: ev.SignalReceived) -> None:
    ctx.stop(status="terminated", error=f"received {obs.signal}")


def on_failed(ctx: Context, obs: ev.KernelFailed) -> None:
    ctx.stop(status="error", error=obs.error)


def stop(ctx: Context, status: ev.KernelStatus, error: str) -> None:
    st = ctx.state
    if st.exited:
        return
    for turn in sorted(st.in_flight.values(), key=lambda t: t.turn_id):
        rec = st.unit(turn.unit_id)
        if rec is not None and rec.state in IN_FLIGHT:
            ctx.transition(turn.unit_id, "cancelled", reason=error, turn_id=turn.turn_id)
        ctx.finish_turn(turn, "stopped", failure_class="unknown" if status == "error" else "none", error=error)
    ctx.exit(status, error)


def exit_run(ctx: Context, status: ev.KernelStatus, error: str = "") -> None:
    if defer_exit(ctx, status, error):  # turns still closing
        return
    st = ctx.state
    completed = failed = 0
    if st.graph is not None:
        for node in st.graph.nodes:
            rec = st.unit(node.id)
            if rec is None:
                continue
            if rec.outcome == "completed":
                completed += 1
            elif rec.outcome in TERMINAL and rec.notified:
                failed += 1
    ctx.emit(
        ev.KernelExited(
            run_id=ctx.run_id,
            at=ctx.at,
            status=status,
            pid=st.pid,
            error=error,
            units_completed=completed,
            units_failed=failed,
        )
    )
