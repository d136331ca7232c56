"""Plan files (TOML) and their compilation to a unit graph (behaviour §11).

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
    requires = ["CONTEXT.md"]   # optional, also per slice: its execution units wait for these
                                # files (true: CONTEXT.md and RESEARCH.md; behaviour §11)

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
        intents = { read = ["docs/"], write = ["src/**"] }  # paths, dirs, globs (behaviour §12)
        timeout = 30                # seconds, > 0, default 600
        retries = 2                 # extra attempts after a failure, >= 0, default 2
        max_dispatches = 8          # runaway cap, >= retries + 1, default retries + 6
        gates = ["security", { id = "verification", command = ["python3", "-m", "pytest", "-q"], timeout = 60 }]
                                    # gate ids or inline tables (id, command, shell, timeout, files), default []
        cwd = "sub/dir"             # optional, relative to the plan root
        env = { KEY = "value" }     # optional, str -> str
        grace = 10                  # seconds between SIGTERM and SIGKILL when the task is stopped
                                    # (timeout, cancel, Ctrl-C); default: the run's grace_period, 10
        heartbeat = 120             # optional: a task silent this long (no output, no progress
                                    # report) is stopped and fails as timed out
        requires = ["docs/API.md"]  # optional: files that must exist, non-blank, before it runs
        phase = "execution"         # "planning": not held by its milestone's/slice's requires
        clarify = true              # a clarify task: `uok clarify ask` up to 3 rounds (or a number)
        produces = ["out/a.txt"]    # files or globs it must leave, non-blank; else it fails as
                                    # "artifact", retried once (behaviour §13)
        [milestones.slices.tasks.metadata]  # optional, free-form, JSON-able values
        owner = "alice"

        [[milestones.slices.tasks]]
        id = "fix"
        agent = "claude-code"       # an agent task (docs/agents.md): claude-code, codex, gemini, generic-jsonl
        prompt = "Make the test pass."   # handed on stdin and in $UOK_PROMPT_FILE
        model = "claude-sonnet-4-6" # optional
        agent_options = { max_turns = 20 }   # optional, the adapter's own
        # command = [...]           # optional: the agent's executable (required for generic-jsonl)

        [[milestones.slices.tasks]]
        file = "tasks/review.md"    # a task as a Markdown file: its fields in a frontmatter
                                    # block, its prompt in the body (uok.domain.plan.taskfiles)

      [[milestones.slices]]
      id = "S2"
      task_files = "tasks/S2/*.md"  # a glob (or an array of globs): one task per file, in
                                    # name order, after the slice's listed tasks
      gates = ["verification"]      # optional: gates of the slice, run on complete-slice:M1/S2

A task without ``command`` is a no-op unit that succeeds at once. Ids
(plan, milestone, slice, task) match ``[A-Za-z0-9_][A-Za-z0-9_.-]*``, so
they never collide with the generated ``complete-slice:<M>/<S>`` ids and
read cleanly in stream names and messages. Unknown keys are errors at every
level: a typo (``depends-on``) must not silently drop an edge.

Edges
-----
* Within a slice, each task depends on the previous one, unless it has
  ``depends_on``, which replaces that edge. ``depends_on`` may name any
  task of its own milestone (any slice) or of an earlier one. A task of a
  *later* milestone already waits for this whole milestone (next rule), so
  naming one is always a cycle, and is reported as one.
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

from typing import TYPE_CHECKING, Any

from uok.domain.plan.model import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ID_PATTERN,
    RUNAWAY_HEADROOM,
    AgentSpec,
    GateSpec,
    PlanError,
    UnitGraph,
    UnitNode,
    complete_slice_id,
    index,
)

if TYPE_CHECKING:
    from uok.domain.plan.compile import compile_plan


def __getattr__(name: str) -> Any:
    """``compile_plan`` on first use: reading a log needs the plan's types
    (every event naming a unit imports ``UnitNode``), not its compiler and
    TOML parser (~10 ms of imports for ``uok state`` or ``uok status``)."""
    if name == "compile_plan":
        from uok.domain.plan.compile import compile_plan

        return compile_plan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "ID_PATTERN",
    "RUNAWAY_HEADROOM",
    "AgentSpec",
    "GateSpec",
    "PlanError",
    "UnitGraph",
    "UnitNode",
    "compile_plan",
    "complete_slice_id",
    "index",
]
