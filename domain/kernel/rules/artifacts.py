"""Artifact gating (behaviour §11, the seed's plan-v2 context gate): a unit
whose dependencies are done is not dispatched while a file it requires is
missing or blank. It stays queued, held with the reason recorded
(``UnitHeld``), and becomes ready when an observation shows the file: in
the same run (``ArtifactsObserved`` after an earlier unit wrote it) or in
a later one (``KernelEntered.artifacts``). Fail closed: a path never
observed counts as missing.
"""

from __future__ import annotations

from uok.domain import events as ev
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.runs import compiled_graph
from uok.domain.kernel.state import ArtifactState, KernelState
from uok.domain.plan.artifacts import hold_reasons


def fold_entered(st: KernelState, e: ev.KernelEntered) -> None:
    """A run starts from what the shell saw at entry; holds are announced anew."""
    st.artifacts = ArtifactState(facts=dict(e.artifacts))


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    """Whether the driven plan requires any artifact: a plan without needs no check per step."""
    st.artifacts.gated = any(n.requires for n in compiled_graph(st, e).nodes)


def fold_observed(st: KernelState, e: ev.ArtifactsObserved) -> None:
    st.artifacts.facts.update(e.facts)


def fold_held(st: KernelState, e: ev.UnitHeld) -> None:
    st.artifacts.held[e.unit_id] = e.reason


def on_observed(ctx: Context, obs: ev.ArtifactsObserved) -> None:
    """A file appeared (or went): dispatch what it unblocks."""
    ctx.advance()


def unmet(st: KernelState, unit_id: str) -> tuple[str, ...]:
    """Why ``unit_id`` may not be dispatched yet for want of artifacts; () if it may."""
    node = st.nodes[unit_id]
    if not node.requires:
        return ()
    return hold_reasons(node.requires, st.artifacts.facts)


def announce(ctx: Context, waiting: list[str]) -> None:
    """Record a ``UnitHeld`` for each waiting unit whose reason is new in this run."""
    st = ctx.state
    for unit_id in waiting:
        reasons = unmet(st, unit_id)
        held = ev.UnitHeld(run_id=ctx.run_id, at=ctx.at, plan_id=st.plan_id, unit_id=unit_id, reasons=reasons)
        if st.artifacts.held.get(unit_id) != held.reason:
            ctx.emit(held)


def summary(st: KernelState, waiting: list[str]) -> str:
    """The run's exit error when only held units remain."""
    reasons = sorted({r for u in waiting for r in unmet(st, u)})
    return f"{len(waiting)} unit(s) held for artifacts: {'; '.join(reasons)}"
