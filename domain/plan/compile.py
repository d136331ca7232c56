"""Compiling a validated plan into its unit graph (the edges, the order,
the file conflicts). The plan file format is documented in
:mod:`uok.domain.plan`; validation of the TOML in :mod:`uok.domain.plan.parse`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence

import msgspec
from uok.domain.plan.graph import CycleError, detect_file_conflicts, topological_order
from uok.domain.plan.model import (
    PlanError,
    UnitGraph,
    UnitNode,
    complete_slice_id,
)  # fmt: skip
from uok.domain.plan.parse import _Parser


def compile_plan(
    source: str,
    *,
    filename: str,
    files: Mapping[str, str] | None = None,
    globs: Mapping[str, Sequence[str]] | None = None,
) -> UnitGraph:
    """Parse, validate and compile a plan; raise :class:`PlanError` on any problem.

    ``files`` and ``globs`` are the Markdown task files the plan names, as the
    shell read them (path -> text) and globbed them (``task_files`` pattern ->
    paths): see :mod:`uok.domain.plan.taskfiles`."""
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(filename, f"malformed TOML: {exc}") from None
    parser = _Parser(filename, files, globs)
    plan_id, title, milestones = parser.plan(doc)

    all_tasks = {t.node.id for _, slices in milestones for _, _, tasks, _ in slices for t in tasks}
    if not all_tasks:
        raise PlanError(filename, "plan has no tasks (the compiled graph would be empty)")

    nodes: list[UnitNode] = []
    previous_completes: tuple[str, ...] = ()
    for mid, slices in milestones:
        in_milestone = {t.node.id for _, _, tasks, _ in slices for t in tasks}
        completes: list[str] = []
        for sid, s_title, tasks, extras in slices:
            if not tasks:
                continue
            slice_ids = {t.node.id for t in tasks}
            deps_of: list[tuple[str, ...]] = []
            for pos, t in enumerate(tasks):
                if t.explicit_deps is not None:
                    for dep in t.explicit_deps:
                        if dep not in all_tasks:
                            raise PlanError(filename, f"depends on unknown task '{dep}'", t.node.id)
                    deps = t.explicit_deps
                else:
                    deps = (tasks[pos - 1].node.id,) if pos else ()
                if not any(d in in_milestone for d in deps):
                    deps = deps + tuple(c for c in previous_completes if c not in deps)
                deps_of.append(deps)
            depended = {d for deps in deps_of for d in deps if d in slice_ids}
            for t, deps in zip(tasks, deps_of, strict=False):
                nodes.append(msgspec.structs.replace(t.node, depends_on=deps))
            sinks = tuple(t.node.id for t in tasks if t.node.id not in depended)
            cid = complete_slice_id(mid, sid)
            nodes.append(
                UnitNode(
                    id=cid,
                    kind="verification",
                    unit_type="complete-slice",
                    milestone=mid,
                    slice=sid,
                    title=s_title or f"Complete slice {mid}/{sid}",
                    depends_on=sinks,
                    requires=extras.requires,
                    produces=tuple(dict.fromkeys(p for t in tasks for p in t.node.produces)),
                    gates=extras.gates,
                    gate_specs=extras.gate_specs,
                )
            )
            completes.append(cid)
        if completes:
            previous_completes = tuple(completes)

    try:
        order = topological_order(nodes)
    except CycleError as exc:
        raise PlanError(filename, "cycle: " + " -> ".join(exc.cycle)) from None
    return UnitGraph(
        plan_id=plan_id,
        title=title,
        nodes=tuple(nodes),
        order=tuple(order),
        conflicts=tuple(detect_file_conflicts(nodes)),
        allow_outside_root=parser.allow_outside_root,
    )
