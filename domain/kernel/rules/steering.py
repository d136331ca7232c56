"""Remote steering: the kernel's rules for pause, resume, cancel and note.

An operator sends a message (``uok steer RUN …``) to ``kernel:<run>``; the
running shell turns it into a ``SteeringReceived`` observation at the next
turn boundary, and the rules here decide a ``SteeringApplied`` saying what
was done (the seed's mode system, ``remote-steering``; behaviour §0):

* ``pause``: dispatch no new unit until ``resume``; running units finish.
  The flag belongs to the *plan*, not the run, and is a fold of
  ``SteeringApplied.paused``: a new run of a paused plan (after a crash or a
  stop) starts paused too, and says so with a ``SteeringApplied`` of its own.
* ``resume``: clear the flag and dispatch what is ready.
* ``cancel UNIT``: a queued unit goes ``cancelled → notified``; a running one
  also ends its turn (``TurnFinished`` status ``stopped``) and the shell kills
  its process (it does so for any ``cancelled`` transition with a turn id).
  Dependents are then blocked by the usual rule. Unlike a SIGTERM, which
  leaves units ``cancelled`` for the next run to resume, an operator cancel
  is final.
* ``note TEXT``: recorded, nothing else.
* ``mode model_mode=M work_mode=W``: the run's modes change (a
  ``ModeChanged`` decision): units dispatched from now on run under them,
  with the model the routing table names for the new model mode.

A message is applied at most once: applied message ids are folded, and a
duplicate delivery is answered with an ``ignored`` outcome.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import intents
from uok.domain.kernel.state import KernelState
from uok.domain.policies.modes import ModeError, parse_mode_change


def is_paused(st: KernelState) -> bool:
    return st.graph is not None and st.graph.plan_id in st.steering.paused


def fold_applied(st: KernelState, e: ev.SteeringApplied) -> None:
    if e.message_id:
        st.steering.applied.add(e.message_id)
    if e.paused is not None and e.plan_id:
        if e.paused:
            st.steering.paused.setdefault(e.plan_id, e.run_id)
        else:
            st.steering.paused.pop(e.plan_id, None)


def fold_mode(st: KernelState, e: ev.ModeChanged) -> None:
    """The driven run's modes, for the units it dispatches from now on."""
    if e.run_id == st.run_id:
        st.work_mode, st.model_mode = e.work_mode, e.model_mode


def on_entered(ctx: Context) -> None:
    """A new run of a paused plan starts paused: record it, so the operator
    sees why nothing is dispatched and which run id to resume."""
    st = ctx.state
    if not is_paused(st):
        return
    plan_id = st.plan_id
    since = st.steering.paused[plan_id]
    _applied(
        ctx,
        message_id="",
        command="pause",
        paused=True,
        outcome=f"plan {plan_id} was paused by run {since}; this run dispatches nothing until "
        f"`uok steer {ctx.run_id} resume`",
    )


def on_steering(ctx: Context, obs: ev.SteeringReceived) -> None:
    st = ctx.state

    def reply(outcome: str, paused: bool | None = None) -> None:
        _applied(
            ctx, message_id=obs.message_id, command=obs.command, argument=obs.argument, outcome=outcome, paused=paused
        )

    if obs.message_id and obs.message_id in st.steering.applied:
        reply("ignored: message already applied")
        return
    if st.exited or st.graph is None:
        reply("ignored: the run has ended")
        return
    cmd = obs.command
    if cmd == "pause":
        if is_paused(st):
            reply("already paused", paused=True)
        else:
            running = len(st.in_flight)
            reply(f"paused: no new unit will be dispatched; {running} running unit(s) will finish", paused=True)
    elif cmd == "resume":
        reply("resumed" if is_paused(st) else "not paused: nothing to resume", paused=False)
        ctx.advance()
    elif cmd == "cancel":
        reply(_cancel(ctx, obs.argument, obs.message_id))
        ctx.advance()
    elif cmd == "note":
        reply("noted")
    elif cmd == "mode":
        reply(_mode(ctx, obs))
    elif cmd == "stop":  # the whole run, as SIGTERM would: running units stop gracefully, the run exits terminated
        why = f": {obs.argument}" if obs.argument else ""
        reply(f"stopping: {len(st.in_flight)} running unit(s) get the graceful stop; the run exits terminated")
        ctx.stop(status="terminated", error=f"stopped by steering message {obs.message_id}{why}")
    elif cmd == "intent":  # a running unit's run-time intents (rules.intents)
        reply(intents.on_request(ctx, obs))
    else:
        reply(f"ignored: unknown command {cmd!r} (expected one of {', '.join(ev.COMMANDS)})")


def _mode(ctx: Context, obs: ev.SteeringReceived) -> str:
    st = ctx.state
    try:
        change = parse_mode_change(obs.argument)
    except ModeError as exc:
        return f"ignored: {exc}"
    work, model = change.get("work_mode", st.work_mode), change.get("model_mode", st.model_mode)
    if (work, model) == (st.work_mode, st.model_mode):
        return f"unchanged: work mode {work}, model mode {model}"
    ctx.emit(
        ev.ModeChanged(
            run_id=ctx.run_id,
            at=ctx.at,
            work_mode=work,
            model_mode=model,
            previous_work_mode=st.work_mode,
            previous_model_mode=st.model_mode,
            message_id=obs.message_id,
            plan_id=st.plan_id,
        )
    )
    return f"mode changed: work mode {work}, model mode {model}; units dispatched from now on use them"


def _cancel(ctx: Context, unit_id: str, message_id: str) -> str:
    st = ctx.state
    plan_id = st.plan_id
    if unit_id not in st.nodes:
        return f"ignored: plan {plan_id} has no unit {unit_id!r}"
    rec = st.unit(unit_id)
    if rec is None or st.is_final(rec):
        return f"ignored: unit {unit_id} already ended {rec.outcome if rec else 'unplanned'}"
    reason = f"cancelled by operator (steering message {message_id})" if message_id else "cancelled by operator"
    turn = next((t for t in st.in_flight.values() if t.unit_id == unit_id), None)
    if turn is not None:
        ctx.transition(unit_id, "cancelled", reason=reason, turn_id=turn.turn_id)  # the shell kills the process
        ctx.phase(turn.turn_id, "finalize", "cancelled")
        ctx.finish_turn(turn, "stopped", error=reason)
        ctx.transition(unit_id, "notified")
        return f"cancelled running unit {unit_id} (turn {turn.turn_id}); its process is killed"
    if rec.state == "queued":
        ctx.transition(unit_id, "cancelled", reason=reason)
        ctx.transition(unit_id, "notified")
        return f"cancelled queued unit {unit_id}"
    return f"ignored: unit {unit_id} is {rec.state}, which cannot be cancelled"


def _applied(
    ctx: Context, *, message_id: str, command: str, outcome: str, argument: str = "", paused: bool | None = None
) -> None:
    ctx.emit(
        ev.SteeringApplied(
            run_id=ctx.run_id,
            at=ctx.at,
            message_id=message_id,
            command=command,
            argument=argument,
            outcome=outcome,
            plan_id=ctx.state.plan_id,
            paused=paused,
        )
    )
