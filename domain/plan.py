"""Plan files (TOML) and their compilation to a unit graph (spec §11).

A plan is milestones → slices → tasks. Compiling it yields a
:class:`UnitGraph`: one ``execute-task`` unit per task, one
``complete-slice`` verification unit per non-empty slice, and the edges
between them. The graph is stored inside the ``PlanCompiled`` event, so a
run replays against exactly the plan it started with, whatever the file
says later. Compilation is pure (TOML text in, graph or :class:`PlanError`
out) and all-or-nothing: a plan with any problem compiles to nothing, before
anything runs.

Format
------
::

    [plan]
    id = "demo"              # optional; default: the file name's stem
    title = "Demo plan"
    allow_outside_root = false   # optional; see "Paths"

    [[milestones]]
    id = "M1"
    title = "First"

      [[milestones.slices]]
      id = "S1"
      title = "Build"

        [[milestones.slices.tasks]]
        id = "prepare"              # unique across the whole plan
        title = "Prepare workspace"
        command = ["python3", "-c", "print('hi')"]  # argv; a string only with shell = true
        shell = false               # default false
        depends_on = ["other-task"] # optional; REPLACES the implicit chain ([] = no deps)
        writes = ["out/a.txt"]      # files the task touches, relative to the plan root
        timeout = 30                # seconds, > 0, default 600
        retries = 2                 # extra attempts after a failure, >= 0, default 2
        max_dispatches = 8          # runaway cap, >= retries + 1, default retries + 6
        gates = ["security", { id = "verification", command = ["python3", "-m", "pytest", "-q"], timeout = 60 }]
                                    # gate ids or inline tables (id, command, shell, timeout, files), default []
        cwd = "sub/dir"             # optional, relative to the plan root
        env = { KEY = "value" }     # optional, str -> str
        [milestones.slices.tasks.metadata]  # optional, free-form, JSON-able values
        owner = "alice"

A task without ``command`` is a no-op unit that succeeds at once. Ids
(plan, milestone, slice, task) match ``[A-Za-z0-9_][A-Za-z0-9_.-]*``, so
they never collide with the generated ``complete-slice:<M>/<S>`` ids and
read cleanly in stream names and messages. Unknown keys are errors at every
level: a typo (``depends-on``) must not silently drop an edge.

Edges
-----
* Within a slice, each task depends on the previous one, unless it has
  ``depends_on``, which replaces that edge. ``depends_on`` may name any task.
* ``complete-slice:<M>/<S>`` (titled with the slice's title) depends on the
  slice's sinks: its tasks that no other task of the same slice depends on
  (for a chain, the last task). It has no command.
* Milestones run in order: each *root* of a milestone (a task with no
  dependency inside its own milestone) also depends on every complete-slice
  unit of the nearest earlier milestone that has tasks. Slices of one
  milestone are not chained; they may run in parallel.

Paths
-----
``writes`` and ``cwd`` are relative to the plan root (the plan file's
directory) and normalised (``out/./a`` is ``out/a``), so two spellings of
one file still count as a conflict. Absolute paths and paths escaping the
root with ``..`` are rejected unless ``[plan] allow_outside_root = true``.
"""

from __future__ import annotations

import tomllib

import msgspec
from uok.domain.graph import CycleError, detect_file_conflicts, topological_order
from uok.domain.plan_model import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ID_PATTERN,
    RUNAWAY_HEADROOM,
    GateSpec,
    PlanError,
    UnitGraph,
    UnitNode,
    complete_slice_id,
    index,
)  # fmt: skip
from uok.domain.plan_parse import _Parser

__all__ = [  # the plan's public names, wherever they are defined
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "ID_PATTERN",
    "RUNAWAY_HEADROOM",
    "GateSpec",
    "PlanError",
    "UnitGraph",
    "UnitNode",
    "compile_plan",
    "complete_slice_id",
    "index",
]


def compile_plan(source: str, *, filename: str) -> UnitGraph:
    """Parse, validate and compile a plan; raise :class:`PlanError` on any problem."""
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(filename, f"malformed TOML: {exc}") from None
    parser = _Parser(filename)
    plan_id, title, milestones = parser.plan(doc)

    all_tasks = {t.node.id for _, slices in milestones for _, _, tasks in slices for t in tasks}
    if not all_tasks:
        raise PlanError(filename, "plan has no tasks (the compiled graph would be empty)")

    nodes: list[UnitNode] = []
    previous_completes: tuple[str, ...] = ()
    for mid, slices in milestones:
        in_milestone = {t.node.id for _, _, tasks in slices for t in tasks}
        completes: list[str] = []
        for sid, s_title, tasks in slices:
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
