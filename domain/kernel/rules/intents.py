"""Parallel intent (behaviour §12): units whose read/write intents overlap
never run at the same time.

For a plan in which some unit declares ``intents`` (the others' ``writes``
count as write intents), dispatch takes the ready units in the graph's
order and skips one whose intents conflict with a unit running or already
taken into the batch (:func:`uok.domain.plan.intents.conflict`: a write
against a write or a read of an overlapping path); each skipped unit gets a
``UnitWaiting`` saying which unit it waits for and why, once per reason.
A plan without intents is dispatched exactly as before (the ``writes``
rule of ``rules.dispatch``), so runs recorded before intents replay
unchanged.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.state import KernelState
from uok.domain.plan.intents import conflict, has_intents


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    if e.run_id == st.run_id:
        st.intents.active = has_intents(e.graph.nodes)
        st.intents.waiting = {}


def fold_waiting(st: KernelState, e: ev.UnitWaiting) -> None:
    if e.run_id == st.run_id:
        st.intents.waiting[e.unit_id] = e.reason


def fold_started(st: KernelState, e: ev.TurnStarted) -> None:
    if e.run_id == st.run_id:
        st.intents.waiting.pop(e.unit_id, None)


def select(st: KernelState, ready: list[str], free: int) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The batch to start (at most ``free`` units, in ``ready``'s order) and,
    for each ready unit left out because of a conflict, (the unit it waits
    for, why)."""
    running = [st.nodes[u] for u in sorted(st.in_flight_units())]
    taken: list[str] = []
    waits: dict[str, tuple[str, str]] = {}
    for unit_id in ready:
        if len(taken) >= free:
            break
        node = st.nodes[unit_id]
        for other in (*running, *(st.nodes[t] for t in taken)):
            why = conflict(node, other)
            if why:
                waits[unit_id] = (other.id, why)
                break
        else:
            taken.append(unit_id)
    return taken, waits


def announce(ctx: Context, waits: dict[str, tuple[str, str]]) -> None:
    """A ``UnitWaiting`` for each waiting unit whose reason is new."""
    st = ctx.state
    for unit_id, (other, why) in waits.items():
        if st.intents.waiting.get(unit_id) != why:
            ctx.emit(
                ev.UnitWaiting(
                    run_id=ctx.run_id, at=ctx.at, plan_id=st.plan_id, unit_id=unit_id, waits_for=other, reason=why
                )
            )
