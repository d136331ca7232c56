"""Dispatch (behaviour §12): which units start now, which can never start, when a
run is done.

Rules, all deterministic and taken from the folded log:

* a unit is *ready* when it is queued, not in flight, and every dependency
  in the plan has completed; ready units are taken in the graph's
  topological order (ties broken by plain string order);
* a batch never holds two writers of one file, nor a writer of a file that
  a unit in flight writes (``select_reactive_dispatch_batch``), and never
  exceeds the free workers; in a plan with read/write intents, never two
  units whose intents overlap (``rules.intents``);
* a queued unit whose dependency ended final but not completed is
  ``blocked``;
* a unit dispatched ``max_dispatches`` times is ``runaway-recovered``
  instead of dispatched again, for every unit type (behaviour §18);
* more turns in one run than its ceiling (:func:`turn_ceiling`: the
  ``max_iterations`` flag, default ``uok.domain.config.MAX_ITERATIONS`` =
  500, raised to ``turns_per_unit`` × the plan's units for runs recording
  that flag) stops the run (behaviour §1: "possible runaway");
* every unit final: the run exits ``ok`` if all completed, else ``failed``
  (with the ``failed_runs`` flag every run since it records; ``ok`` before);
* a unit that would be ready but requires an artifact that is missing or
  blank is held (``rules.artifacts``): it stays queued, ``UnitHeld`` says
  why, and if nothing else can run the run exits ``failed`` naming the
  files, leaving it queued for a later run;
* a unit a breaker holds (``rules.gating.hold``) is passed over until the
  breaker leaves ``open``; while only held units remain the run waits for
  the shell's ``BreakerDue``;
* nothing in flight and nothing ready while units remain is a deadlock:
  they are blocked and the run exits ``error``;
* nothing is dispatched while the plan is paused (``rules.steering``) or
  the run's exit waits for turns to close (``rules.closeout``).
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules import artifacts, closeout, gating, intents, steering
from uok.domain.kernel.state import KernelState
from uok.domain.plan import UnitNode
from uok.domain.plan import graph as plan_graph
from uok.domain.policies.lifecycle import UnitRecord


def advance(ctx: Context) -> None:
    """Dispatch what can run, settle what can never run, exit when done."""
    st = ctx.state
    if st.exited or st.graph is None:
        return
    while True:
        _block_unreachable(ctx)
        if not _dispatch(ctx):
            break
    waiting = waiting_units(st)
    if waiting:
        artifacts.announce(ctx, waiting)
    if not st.in_flight:
        if not st.scheduled().unsettled:
            _exit_settled(ctx)
        elif st.gates.holds and not ready_units(st, 1):
            pass  # held by a breaker, not deadlocked: its BreakerDue (the shell's timer) wakes the run
        elif waiting and not ready_units(st, 1):  # held, not deadlocked: a later run resumes them
            ctx.exit("failed", artifacts.summary(st, waiting))
        elif not ready_units(st, 1):
            remaining = [n.id for n in st.graph.nodes if not st.is_final(st.unit(n.id))]
            for unit_id in remaining:
                ctx.transition(unit_id, "blocked", reason="deadlock: no ready unit and nothing in flight")
                ctx.transition(unit_id, "notified")
            ctx.exit("error", "Execution graph deadlock detected: no ready nodes and graph not complete")


def _exit_settled(ctx: Context) -> None:
    """Every unit is final: the run is ``ok`` only if every one completed
    (behaviour §1). Runs recorded before the ``failed_runs`` flag said ``ok``
    either way, and replay keeps their decision."""
    st = ctx.state
    assert st.graph is not None
    unfinished = [n.id for n in st.graph.nodes if (rec := st.unit(n.id)) is not None and rec.outcome != "completed"]
    if unfinished and st.flags.failed_runs:
        shown = ", ".join(unfinished[:5]) + (f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else "")
        ctx.exit("failed", f"{len(unfinished)} unit(s) did not complete: {shown}")
    else:
        ctx.exit("ok")


def ready_units(st: KernelState, count: int | None = None) -> list[str]:
    """Queued units, not in flight, whose dependencies all completed and
    whose required artifacts exist, in the graph's order (the first
    ``count`` of them). Kept from transitions
    (:class:`~uok.domain.kernel.schedule.Schedule`): no scan of the plan;
    a plan with artifact requirements filters its ready units
    (``rules.artifacts``)."""
    assert st.graph is not None
    sched = st.scheduled()
    busy = st.in_flight_units()
    if st.gates.holds:  # held by a breaker until it lets a probe through (rules.gating.hold)
        busy |= st.gates.holds.keys()
    if not st.artifacts.gated:
        return sched.first_ready(busy, len(sched.ready) if count is None else count)
    ready = [u for u in sched.first_ready(busy, len(sched.ready)) if not artifacts.unmet(st, u)]
    return ready if count is None else ready[:count]


def waiting_units(st: KernelState) -> list[str]:
    """Units that would be ready but for an artifact they require (rules.artifacts)."""
    if st.graph is None or not st.artifacts.gated:
        return []
    sched = st.scheduled()
    return [u for u in sched.first_ready(st.in_flight_units(), len(sched.ready)) if artifacts.unmet(st, u)]


def _block_unreachable(ctx: Context) -> None:
    """Block every queued unit a dependency of which ended final but not
    completed, in passes over the graph's order (a unit blocked in a pass
    blocks the ones after it in the same pass, the ones before it in the
    next), as the scan this replaces did; only the doomed units are visited."""
    st = ctx.state
    sched = st.scheduled()
    while sched.doomed:
        rank = sched.next_doomed(-1)
        while rank is not None:
            unit_id = sched.ids[rank]
            dep, outcome = _first_bad_dependency(st, unit_id)
            ctx.transition(unit_id, "blocked", reason=f"dependency {dep} ended {outcome}")
            ctx.transition(unit_id, "notified")
            rank = sched.next_doomed(rank)


def _first_bad_dependency(st: KernelState, unit_id: str) -> tuple[str, str]:
    for dep in st.nodes[unit_id].depends_on:
        drec = st.unit(dep)
        if dep in st.nodes and drec is not None and st.is_final(drec) and drec.outcome != "completed":
            return dep, drec.outcome
    raise AssertionError(f"{unit_id} is doomed but no dependency ended badly")  # the schedule's counts broke


def _held(st: KernelState) -> bool:
    """True while dispatch is held: paused by config or by steering, or the run is exiting."""
    return st.flags.paused or steering.is_paused(st) or closeout.exit_pending(st)


def _dispatch(ctx: Context) -> bool:
    """Dispatch one batch; True if anything changed (so try again)."""
    st = ctx.state
    assert st.graph is not None
    if _held(st):
        return False
    free = st.workers - len(st.in_flight)
    if free <= 0:
        return False
    if st.intents.active:  # the plan declares read/write intents (rules.intents)
        selected, waits = intents.select(st, ready_units(st), free)
        intents.announce(ctx, waits)
    else:
        in_flight_outputs = {w for u in st.in_flight_units() for w in st.nodes[u].writes}
        selected = _select(st, free, in_flight_outputs)
    if not selected:
        return False
    changed = False
    for unit_id in selected:
        node, rec = st.nodes[unit_id], st.unit(unit_id)
        assert rec is not None
        if rec.dispatches >= node.max_dispatches:
            ctx.transition(
                unit_id,
                "runaway-recovered",
                reason=f"dispatched {rec.dispatches} times, cap is {node.max_dispatches}",
            )
            ctx.transition(unit_id, "notified")
            changed = True
            continue
        if st.iteration >= turn_ceiling(st):
            ctx.stop(status="error", error=f"Safety: loop exceeded {st.iteration} iterations — possible runaway")
            return False
        _start_turn(ctx, node, rec)
        changed = True
    return changed


def turn_ceiling(st: KernelState) -> int:
    """Turns one run may start before it is stopped as a runaway: the
    ``max_iterations`` flag (500 by default), or, for runs that record
    ``turns_per_unit`` (every run since issue 12), at least that many turns
    per unit of the plan: runaway detection is per unit (``max_dispatches``),
    and this backstop grows with the plan, so no healthy run of any size
    meets it."""
    per_unit = st.flags.turns_per_unit
    return max(st.flags.max_iterations, per_unit * len(st.nodes)) if per_unit else st.flags.max_iterations


def _select(st: KernelState, free: int, in_flight_outputs: set[str]) -> list[str]:
    """The batch ``select_reactive_dispatch_batch`` picks from the ready units,
    asked of the first ones only: its choice is greedy in the graph's order
    (no ready unit depends on another: its dependencies completed), so the
    batch chosen from a prefix is the whole list's once it is full. The
    prefix doubles until the batch is full or the ready units run out."""
    count = free
    while True:
        ready = ready_units(st, count)
        if not ready:
            return []
        nodes = [st.nodes[u] for u in ready]
        selected, _conflicts = plan_graph.select_reactive_dispatch_batch(nodes, ready, free, in_flight_outputs)
        if len(selected) >= free or len(ready) < count:
            return selected
        count *= 2


def _start_turn(ctx: Context, node: UnitNode, rec: UnitRecord) -> None:
    st = ctx.state
    iteration = st.iteration + 1
    turn_id = f"{ctx.run_id}:{iteration}"
    ctx.transition(node.id, "claimed", dispatches=rec.dispatches + 1, turn_id=turn_id)
    ctx.emit(
        ev.TurnStarted(
            run_id=ctx.run_id,
            at=ctx.at,
            turn_id=turn_id,
            iteration=iteration,
            unit_id=node.id,
            unit_type=node.unit_type,
            attempt=rec.attempt,
        )
    )
    ctx.transition(node.id, "running", turn_id=turn_id)
    if st.flags.dense_turns < 1:  # dense runs: TurnStarted says it (readers imply the phase, issue 15)
        ctx.phase(turn_id, "dispatch", "dispatched", {"attempt": rec.attempt})
    if node.command is None and node.agent is None:
        if node.produces:  # a complete-slice verifying its slice's products: the shell looks first (rules.execution)
            ctx.phase(turn_id, "unit", "check-products")
            return
        ctx.phase(turn_id, "unit", "noop")
        gating.start_gates(ctx, st.in_flight[turn_id])
