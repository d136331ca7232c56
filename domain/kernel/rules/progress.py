"""Progress reports (``ProgressReported``, issue 12): a running unit enters
``progress`` (and stays there, report after report) with the task's message
as the transition's reason. A report of a turn that is no longer in flight,
or whose unit is no longer running (its gates run, it was cancelled), is
recorded and decides nothing."""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context


def on_progress(ctx: Context, obs: ev.ProgressReported) -> None:
    st = ctx.state
    turn = st.in_flight.get(obs.turn_id)
    if turn is None or st.exited:
        return
    rec = st.unit(turn.unit_id)
    if rec is None or rec.state not in ("running", "progress") or rec.turn_id != obs.turn_id:
        return
    ctx.transition(turn.unit_id, "progress", reason=obs.message, turn_id=obs.turn_id)
