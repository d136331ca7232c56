"""Sidecar work queued during a run (behaviour §12, the seed's sidecar
queue): hooks, triage, quick tasks a unit asks for in its spawn file with
``"sidecar": "<kind>"``.

When the unit's turn completes, each such request becomes item ``index``
of its plan's sidecar queue (``SidecarQueued``): a unit with the seed's id
``sidecar-<index, 4 digits>:<kind>:<unit type>:<unit id>`` and node kind
(``hook``, ``verification`` for triage, ``team-worker`` otherwise), which
depends on the previous item (so the queue runs one item at a time, in
the order it was queued) and on nothing else; no regular unit waits for
it. It is placed in the dispatch order right after the unit that queued it,
so it runs between regular units, and because the queue is a chain it
takes at most one worker: regular units are never starved. Items live in
the log like sub-agents (re-added on later runs, never re-run when done).
"""

from __future__ import annotations

import posixpath

from uok.domain import events as ev
from uok.domain.events import SpawnRequest
from uok.domain.kernel.context import Context
from uok.domain.kernel.state import KernelState, TurnInfo
from uok.domain.plan import DEFAULT_RETRIES, RUNAWAY_HEADROOM, UnitNode
from uok.domain.plan.sidecar import node_kind


def _queue(st: KernelState) -> list[UnitNode]:
    assert st.graph is not None
    return [n for n in st.subagents.spawned.get(st.graph.plan_id, ()) if "sidecar_index" in n.metadata]


def queue_sidecars(ctx: Context, turn: TurnInfo, requests: tuple[SpawnRequest, ...]) -> None:
    """Called as the queuing unit's turn completes: enqueue its sidecar requests."""
    st = ctx.state
    assert st.graph is not None
    parent = st.nodes[turn.unit_id]
    for req in requests:
        problem = _problem(req)
        if problem is not None:
            ctx.phase(turn.turn_id, "unit", "sidecar-rejected", {"id": req.id, "reason": problem})
            continue
        queue = _queue(st)
        index = len(queue)
        unit_type = req.unit_type or req.sidecar
        node_id = f"sidecar-{index:04d}:{req.sidecar}:{unit_type}:{req.id}"
        retries = req.retries if req.retries is not None else DEFAULT_RETRIES
        node = UnitNode(
            id=node_id,
            kind=node_kind(req.sidecar),
            unit_type=unit_type,
            milestone=parent.milestone,
            slice=parent.slice,
            title=req.title or f"{req.sidecar} {req.id}",
            depends_on=(queue[-1].id,) if queue else (),
            writes=tuple(posixpath.normpath(w) for w in req.writes),
            command=req.command,
            shell=req.shell,
            timeout=float(req.timeout) if req.timeout is not None else parent.timeout,
            retries=retries,
            max_dispatches=retries + RUNAWAY_HEADROOM,
            cwd=parent.cwd,
            env={**parent.env, **req.env},
            metadata={"sidecar_index": index, "sidecar_kind": req.sidecar, "queued_by": parent.id},
        )
        ctx.emit(
            ev.SidecarQueued(
                run_id=ctx.run_id,
                at=ctx.at,
                plan_id=st.graph.plan_id,
                index=index,
                kind=req.sidecar,
                unit_type=unit_type,
                unit_id=req.id,
                queued_by=parent.id,
                turn_id=turn.turn_id,
                node=node,
            )
        )
        ctx.transition(node_id, "queued", attempt=1, dispatches=0, reason=f"sidecar queued by {parent.id}")


def _problem(req: SpawnRequest) -> str | None:
    if req.error:
        return req.error
    if not req.id or "\0" in req.id:
        return "id must be a non-empty string"
    if not req.command or not all(isinstance(a, str) and a for a in req.command):
        return "command must be a non-empty array of non-empty strings"
    if req.shell and len(req.command) != 1:
        return "shell = true needs command to be a one-element array holding the shell string"
    if req.timeout is not None and not req.timeout > 0:
        return f"timeout must be > 0, got {req.timeout}"
    for w in req.writes:
        norm = posixpath.normpath(w)
        if w.startswith("/") or norm == ".." or norm.startswith("../"):
            return f"writes path {w!r} must stay under the plan root"
    return None
