"""The compiled plan's shapes: what a plan becomes, and what events carry.

``UnitGraph`` is stored inside ``PlanCompiled`` events, so these Structs are
part of the log's format: add fields with defaults, never rename. The plan
*file* format and the compiler are in :mod:`uok.domain.plan`; validation of the
TOML in :mod:`uok.domain.plan.parse`.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from uok.domain.errors import InputError
from uok.domain.plan.graph import FileConflict

DEFAULT_TIMEOUT = 600.0
DEFAULT_RETRIES = 2
RUNAWAY_HEADROOM = 6  # default max_dispatches = retries + this
DEFAULT_REQUIRES = ("CONTEXT.md", "RESEARCH.md")  # `requires = true` (behaviour §11)
TASK_FILE_KEYS = frozenset({"file"})  # a plan's task table naming a Markdown task file holds only this
ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class GateSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Per-task options of one gate, from an inline table in ``gates``.

    ``gates = ["security", { id = "verification", command = [...], timeout = 60 }]``
    lists one plain id and one id with options; what a task leaves out falls
    back to the ``[uok.gate.<id>]`` defaults of the config (see uok.domain.config).
    """

    id: str
    command: tuple[str, ...] | None = None
    shell: bool = False
    timeout: float | None = None
    files: tuple[str, ...] = ()


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An ``agent`` task: which coding-agent CLI runs it and what it is asked.

    ``name`` picks the adapter (``claude-code``, ``codex``, ``gemini``,
    ``generic-jsonl``: :mod:`uok.adapters.agents`), which builds the command
    line from these fields and reads the agent's event stream while it runs.
    ``prompt`` is handed to the agent on its stdin and in the file named by
    ``UOK_PROMPT_FILE``; ``options`` are the adapter's own (docs/agents.md)."""

    name: str
    prompt: str = ""
    model: str = ""
    options: dict[str, Any] = {}


class UnitNode(msgspec.Struct, frozen=True, kw_only=True):
    """One schedulable unit. Stored inside events: add fields only with defaults."""

    id: str
    kind: str  # "unit" | "verification"
    unit_type: str  # "execute-task" | "complete-slice"
    milestone: str
    slice: str
    title: str = ""
    depends_on: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None  # argv; with shell=True a 1-tuple holding the shell string
    shell: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    max_dispatches: int = DEFAULT_RETRIES + RUNAWAY_HEADROOM
    gates: tuple[str, ...] = ()  # gate ids, in the order they run
    gate_specs: tuple[GateSpec, ...] = ()  # options of the gates listed as inline tables
    cwd: str | None = None
    env: dict[str, str] = {}
    metadata: dict[str, Any] = {}
    grace: float | None = None  # seconds between SIGTERM and SIGKILL when stopped; None: the run's
    heartbeat: float | None = None  # seconds of silence (no output, no progress) after which it is stopped
    body: str = ""  # a Markdown task file's body: the task's prompt (UOK_PROMPT_FILE)
    body_sha256: str = ""  # its hash: an edited prompt is a changed task
    source_file: str = ""  # the Markdown task file it came from, relative to the plan root
    agent: AgentSpec | None = None  # an agent task (docs/agents.md); ``command``, if any, is its executable
    requires: tuple[str, ...] = ()  # artifacts that must exist, non-blank, before dispatch (behaviour §11)
    phase: str = "execution"  # "planning" units are not held by their milestone's or slice's requires
    produces: tuple[str, ...] = ()  # files (or globs) it must leave, non-blank, to count as completed (§13)
    clarify_rounds: int = 0  # a clarify task: questions it may ask with `uok clarify ask` (§11); 0: none
    read_intents: tuple[str, ...] = ()  # paths, directories, globs it reads (§12: uok.domain.plan.intents)
    write_intents: tuple[str, ...] = ()  # ... and writes: no unit with an overlapping intent runs beside it


class UnitGraph(msgspec.Struct, frozen=True, kw_only=True):
    """A compiled plan: nodes in plan order plus their deterministic order."""

    plan_id: str
    title: str
    nodes: tuple[UnitNode, ...]
    order: tuple[str, ...]
    conflicts: tuple[FileConflict, ...]
    allow_outside_root: bool = False

    def node(self, unit_id: str) -> UnitNode:
        """The node with this id (KeyError if none). Linear; use :func:`index` in loops."""
        for n in self.nodes:
            if n.id == unit_id:
                return n
        raise KeyError(unit_id)


def index(graph: UnitGraph) -> dict[str, UnitNode]:
    """id -> node, for callers doing many lookups."""
    return {n.id: n for n in graph.nodes}


class PlanError(InputError):
    """A plan that must not run. ``str()`` is ``"<file>: [task '<t>': ]<problem>"``."""

    def __init__(self, file: str, problem: str, task: str | None = None):
        self.file, self.problem, self.task = file, problem, task
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"task '{self.task}': " if self.task is not None else ""
        return f"{self.file}: {where}{self.problem}"


def complete_slice_id(milestone: str, slice_id: str) -> str:
    return f"complete-slice:{milestone}/{slice_id}"
