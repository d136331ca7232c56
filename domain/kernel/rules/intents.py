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

A running unit may declare more intents at run time (``uok intent`` from
inside its task: a steering message ``intent TURN read=P write=P``): they
are granted (``IntentDeclared``, held until its turn ends, and dispatch
from then on checks them) unless they overlap a unit running beside it,
then refused (``IntentRefused``, naming the unit and the paths).
"""

from __future__ import annotations

from typing import NamedTuple

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.runs import compiled_graph
from uok.domain.kernel.state import KernelState
from uok.domain.plan.intents import conflict, has_intents


class Claim(NamedTuple):
    """A running unit's intents: its task's, and those it declared at run time."""

    id: str
    writes: tuple[str, ...]
    read_intents: tuple[str, ...]
    write_intents: tuple[str, ...]


def claim(st: KernelState, unit_id: str) -> Claim:
    node = st.nodes[unit_id]
    reads, writes = st.intents.runtime.get(unit_id, ((), ()))
    return Claim(node.id, tuple(node.writes), (*node.read_intents, *reads), (*node.write_intents, *writes))


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    if e.run_id == st.run_id:
        st.intents.active = has_intents(compiled_graph(st, e).nodes)
        st.intents.waiting = {}


def fold_waiting(st: KernelState, e: ev.UnitWaiting) -> None:
    if e.run_id == st.run_id:
        st.intents.waiting[e.unit_id] = e.reason


def fold_started(st: KernelState, e: ev.TurnStarted) -> None:
    if e.run_id == st.run_id:
        st.intents.waiting.pop(e.unit_id, None)


def fold_declared(st: KernelState, e: ev.IntentDeclared) -> None:
    if e.run_id == st.run_id:
        reads, writes = st.intents.runtime.get(e.unit_id, ((), ()))
        st.intents.runtime[e.unit_id] = ((*reads, *e.reads), (*writes, *e.writes))
        st.intents.active = True


def fold_finished(st: KernelState, e: ev.TurnFinished) -> None:
    if e.run_id == st.run_id:
        st.intents.runtime.pop(e.unit_id, None)


def parse_request(argument: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """``TURN read=P write=P ...`` -> (turn id, reads, writes); ValueError naming the problem."""
    words = argument.split()
    if len(words) < 2:
        raise ValueError("intent needs a turn id and at least one read=PATH or write=PATH")
    reads: list[str] = []
    writes: list[str] = []
    for word in words[1:]:
        kind, sep, path = word.partition("=")
        if not sep or kind not in ("read", "write") or not path:
            raise ValueError(f"intent takes read=PATH and write=PATH, got {word!r}")
        if path.startswith(("/", "../")) or path == "..":
            raise ValueError(f"intent path {path!r} must be relative to the plan root, inside it")
        (reads if kind == "read" else writes).append(path)
    return words[0], tuple(reads), tuple(writes)


def on_request(ctx: Context, obs: ev.SteeringReceived) -> str:
    """A running unit asks for more intents: granted, or refused if they
    overlap a unit running beside it. Returns the steering outcome."""
    st = ctx.state
    try:
        turn_id, reads, writes = parse_request(obs.argument)
    except ValueError as exc:
        return f"refused: {exc}"
    turn = st.in_flight.get(turn_id)
    if turn is None:
        return f"refused: turn {turn_id} is not running"
    unit_id = turn.unit_id
    asked = Claim(unit_id, (), reads, writes)
    for other in sorted(st.in_flight_units()):
        if other == unit_id:
            continue
        why = conflict(asked, claim(st, other))
        if why:
            ctx.emit(
                ev.IntentRefused(
                    run_id=ctx.run_id, at=ctx.at, plan_id=st.plan_id, unit_id=unit_id, turn_id=turn_id,
                    reads=reads, writes=writes, reason=why, message_id=obs.message_id,
                )
            )  # fmt: skip
            return f"refused: {why}"
    ctx.emit(
        ev.IntentDeclared(
            run_id=ctx.run_id, at=ctx.at, plan_id=st.plan_id, unit_id=unit_id, turn_id=turn_id,
            reads=reads, writes=writes, message_id=obs.message_id,
        )
    )  # fmt: skip
    return "granted"


def select(st: KernelState, ready: list[str], free: int) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The batch to start (at most ``free`` units, in ``ready``'s order) and,
    for each ready unit left out because of a conflict, (the unit it waits
    for, why)."""
    running = [claim(st, u) for u in sorted(st.in_flight_units())]
    taken: list[str] = []
    waits: dict[str, tuple[str, str]] = {}
    for unit_id in ready:
        if len(taken) >= free:
            break
        node = st.nodes[unit_id]
        others: list[Claim] = [*running, *(claim(st, t) for t in taken)]
        for other in others:
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
