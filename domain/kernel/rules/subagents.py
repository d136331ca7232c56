"""Sub-agents: units started by a unit, inheriting its modes (seed:
``subagent-inheritance``).

A running unit asks for children through its spawn file (:class:`uok.domain.events.SpawnRequest`).
When the parent's turn completes, the kernel (pure) turns each acceptable
request into a child unit:

* id ``<parent>/<child>``: ``/`` cannot occur in plan task ids, so children
  never collide with planned units; grandchildren read ``a/b/c``;
* it inherits the parent's effective work mode, model mode and permission
  profile unless the request overrides them; the profile may be narrowed
  but never widened (``uok.domain.policies.modes``). Cwd, env and timeout are inherited
  too; retries default to the plan default;
* the lineage (ancestors, root first) is recorded in ``SubagentSpawned``
  and in the child's metadata;
* **dependency rule**: the child depends on its parent (which has just
  completed), and every unit that depended on the parent now also depends
  on the child. So the parent's dependents (including its slice's
  ``complete-slice`` unit) wait for all its descendants; if a child ends
  failed, they are blocked like any dependent of a failed unit.

Requests from a failed attempt are ignored (the unit retries and may ask
again). Refused requests (bad id, duplicate, no command, escalation, too
deep, too many) are recorded as ``PhaseResult(action="spawn-rejected")``.

Children live in the log, not in the plan file: ``SubagentSpawned`` carries
the child node, and every later run of the plan re-adds the children it
finds in the log, so a restart neither forgets nor re-runs them.
"""

from __future__ import annotations

import posixpath

import msgspec
from uok.domain import events as ev
from uok.domain.events import SpawnRequest, SubagentSpawned
from uok.domain.kernel.context import Context
from uok.domain.kernel.rules.sidecar import queue_sidecars
from uok.domain.kernel.state import KernelState, TurnInfo
from uok.domain.plan import DEFAULT_RETRIES, ID_PATTERN, RUNAWAY_HEADROOM, UnitNode
from uok.domain.policies.modes import (
    DEFAULT_MODEL_MODE,
    DEFAULT_WORK_MODE,
    MODE_KEYS,
    ModeError,
    node_modes,
    profile_rank,
    resolve_mode,
    resolve_permission_profile,
)  # fmt: skip

MAX_CHILDREN_PER_TURN = 16
MAX_DEPTH = 4  # a planned unit is depth 0, its children depth 1, … at most depth 4


def run_defaults(st: KernelState) -> dict[str, str]:
    return {
        "work_mode": resolve_mode(st.work_mode, DEFAULT_WORK_MODE),
        "model_mode": resolve_mode(st.model_mode, DEFAULT_MODEL_MODE),
        "permission_profile": resolve_permission_profile(st.flags.permission_profile),
    }


# ------------------------------------------------------------------ folds


def fold_execution(st: KernelState, e: ev.ExecutionFinished) -> None:
    """Keep a turn's spawn requests until the turn concludes."""
    if e.spawns and e.run_id == st.run_id and e.turn_id in st.in_flight:
        st.subagents.pending[e.turn_id] = e.spawns


def fold_turn_finished(st: KernelState, e: ev.TurnFinished) -> None:
    st.subagents.pending.pop(e.turn_id, None)


def fold_spawned(st: KernelState, e: SubagentSpawned) -> None:
    if e.node is None or not e.plan_id:
        return
    children = st.subagents.spawned.setdefault(e.plan_id, [])
    if all(c.id != e.node.id for c in children):
        children.append(e.node)
    if st.graph is not None and st.graph.plan_id == e.plan_id:
        _add_child(st, e.node)


def fold_plan(st: KernelState, e: ev.PlanCompiled) -> None:
    """The driven run's plan was compiled: put back the children earlier runs spawned."""
    if e.run_id != st.run_id or st.graph is None:
        return
    for node in st.subagents.spawned.get(st.graph.plan_id, ()):
        _add_child(st, node)


def requeue_cancelled_children(ctx: Context) -> None:
    """Children a signal left ``cancelled`` resume, like planned units do."""
    st = ctx.state
    if st.graph is None:
        return
    for node in st.subagents.spawned.get(st.graph.plan_id, ()):
        rec = st.unit(node.id)
        if rec is not None and rec.state == "cancelled":
            ctx.transition(node.id, "queued", reason="resumed after cancellation")


def fold_sidecar(st: KernelState, e: ev.SidecarQueued) -> None:
    """Sidecar work (rules.sidecar) is kept with the plan's sub-agents, so later runs put it back."""
    children = st.subagents.spawned.setdefault(e.plan_id, [])
    if all(c.id != e.node.id for c in children):
        children.append(e.node)
    if st.graph is not None and st.graph.plan_id == e.plan_id:
        _add_child(st, e.node)


def _add_child(st: KernelState, child: UnitNode) -> None:
    graph = st.graph
    assert graph is not None
    if child.id in st.nodes:
        return
    parent = child.metadata.get("parent", "")
    # the parent's dependents now wait for the child too; its other children (siblings) do not;
    # sidecar work (rules.sidecar) holds nobody: it has no "parent", only the unit that queued it
    nodes = (
        *tuple(
            msgspec.structs.replace(n, depends_on=(*n.depends_on, child.id))
            if parent and parent in n.depends_on and not n.id.startswith(parent + "/")
            else n
            for n in graph.nodes
        ),
        child,
    )
    order = list(graph.order)
    at = len(order)
    if parent:
        for i, unit_id in enumerate(order):  # after the parent and the children it already has
            if unit_id == parent or unit_id.startswith(parent + "/"):
                at = i + 1
    elif (queued_by := child.metadata.get("queued_by")) in order:
        at = order.index(queued_by) + 1  # sidecar work: right after the unit that queued it,
        while at < len(order) and order[at].startswith("sidecar-"):  # after the sidecars already there
            at += 1
    order.insert(at, child.id)
    st.graph = msgspec.structs.replace(graph, nodes=nodes, order=tuple(order))
    st.nodes = {n.id: n for n in nodes}
    st.plans[graph.plan_id] = st.graph
    st.schedule = None  # rebuilt from the new graph on the next dispatch


# ------------------------------------------------------------------ decisions


def spawn_children(ctx: Context, turn: TurnInfo) -> None:
    """Called as a parent's turn completes successfully: add its children."""
    st = ctx.state
    requests = st.subagents.pending.pop(turn.turn_id, ())
    if not requests or st.graph is None:
        return
    sidecars = tuple(r for r in requests if r.sidecar)
    if sidecars:  # sidecar work is queued, not spawned as children (rules.sidecar)
        queue_sidecars(ctx, turn, sidecars)
        requests = tuple(r for r in requests if not r.sidecar)
        if not requests:
            return
    parent = st.nodes[turn.unit_id]
    parent_modes = node_modes(parent.metadata, run_defaults(st))
    lineage = (*_lineage(parent), parent.id)
    accepted = 0
    seen: set[str] = set()
    for req in requests:
        child_id = f"{parent.id}/{req.id}"
        problem = _problem(st, req, child_id, seen, lineage, accepted, parent_modes)
        if problem is None:
            try:
                modes, overrides = _inherit(parent_modes, req)
            except ModeError as exc:
                problem = str(exc)
        if problem is not None:
            ctx.phase(turn.turn_id, "unit", "spawn-rejected", {"id": req.id, "reason": problem})
            continue
        seen.add(child_id)
        accepted += 1
        retries = req.retries if req.retries is not None else DEFAULT_RETRIES
        node = UnitNode(
            id=child_id,
            kind="unit",
            unit_type="execute-task",
            milestone=parent.milestone,
            slice=parent.slice,
            title=req.title or f"sub-agent {req.id} of {parent.id}",
            depends_on=(parent.id,),
            writes=tuple(posixpath.normpath(w) for w in req.writes),
            command=req.command,
            shell=req.shell,
            timeout=float(req.timeout) if req.timeout is not None else parent.timeout,
            retries=retries,
            max_dispatches=retries + RUNAWAY_HEADROOM,
            cwd=parent.cwd,
            env={**parent.env, **req.env},
            metadata={**modes, "parent": parent.id, "lineage": list(lineage), "spawned_by_turn": turn.turn_id},
        )
        ctx.emit(
            SubagentSpawned(
                run_id=ctx.run_id,
                at=ctx.at,
                parent_unit=parent.id,
                child_unit=child_id,
                plan_id=st.graph.plan_id,
                turn_id=turn.turn_id,
                lineage=lineage,
                overrides=overrides,
                node=node,
                **modes,
            )
        )
        ctx.transition(child_id, "queued", attempt=1, dispatches=0, reason=f"spawned by {parent.id}")


def _lineage(node: UnitNode) -> tuple[str, ...]:
    raw = node.metadata.get("lineage", ())
    return tuple(str(x) for x in raw) if isinstance(raw, (list, tuple)) else ()


def _inherit(parent: dict[str, str], req: SpawnRequest) -> tuple[dict[str, str], dict[str, str]]:
    modes = dict(parent)
    overrides: dict[str, str] = {}
    for key in MODE_KEYS:
        value = getattr(req, key)
        if value is None:
            continue
        value = resolve_permission_profile(value) if key == "permission_profile" else resolve_mode(value, parent[key])
        if value != parent[key]:
            modes[key] = overrides[key] = value
    return modes, overrides


def _problem(
    st: KernelState,
    req: SpawnRequest,
    child_id: str,
    seen: set[str],
    lineage: tuple[str, ...],
    accepted: int,
    parent_modes: dict[str, str],
) -> str | None:
    if req.error:
        return req.error
    if not ID_PATTERN.fullmatch(req.id):
        return f"id {req.id!r} must match {ID_PATTERN.pattern}"
    if child_id in st.nodes or child_id in seen:
        return f"unit {child_id} exists already"
    if not req.command or not all(isinstance(a, str) and a for a in req.command):
        return "command must be a non-empty array of non-empty strings"
    if req.shell and len(req.command) != 1:
        return "shell = true needs command to be a one-element array holding the shell string"
    if req.timeout is not None and not req.timeout > 0:
        return f"timeout must be > 0, got {req.timeout}"
    if req.retries is not None and req.retries < 0:
        return f"retries must be >= 0, got {req.retries}"
    for w in req.writes:
        norm = posixpath.normpath(w)
        if w.startswith("/") or norm == ".." or norm.startswith("../"):
            return f"writes path {w!r} must stay under the plan root"
    if len(lineage) > MAX_DEPTH:  # the child's depth is the length of its lineage
        return f"sub-agent depth limit {MAX_DEPTH} reached (parent {lineage[-1]})"
    if accepted >= MAX_CHILDREN_PER_TURN:
        return f"at most {MAX_CHILDREN_PER_TURN} sub-agents per turn"
    if req.permission_profile is not None:
        try:
            wanted = resolve_permission_profile(req.permission_profile)
        except ModeError as exc:
            return str(exc)
        if profile_rank(wanted) > profile_rank(parent_modes["permission_profile"]):
            return (
                f"permission profile {wanted} is wider than the parent's "
                f"{parent_modes['permission_profile']}; a sub-agent may only narrow it"
            )
    return None
