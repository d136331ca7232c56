"""Validating a plan's TOML document, table by table, with errors that name
the file, the task and the problem. Pure: it receives the parsed document.

Split from :mod:`uok.domain.plan`, which compiles the validated tasks into the
unit graph.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import PurePath, PureWindowsPath
from typing import Any, NamedTuple

import msgspec
from uok.domain.plan.agent import AGENT_KEYS, parse_agent
from uok.domain.plan.model import (
    DEFAULT_REQUIRES,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ID_PATTERN,
    RUNAWAY_HEADROOM,
    TASK_FILE_KEYS,
    GateSpec,
    PlanError,
    UnitNode,
    complete_slice_id,
)  # fmt: skip
from uok.domain.plan.taskfiles import line_of_problem, parse_task_file
from uok.domain.policies.clarify import CLARIFY_ROUND_LIMIT
from uok.domain.policies.modes import ModeError, node_modes

_TOP_KEYS = frozenset({"plan", "milestones"})
_PLAN_KEYS = frozenset({"id", "title", "allow_outside_root"})
_MILESTONE_KEYS = frozenset({"id", "title", "slices", "requires"})
_SLICE_KEYS = frozenset({"id", "title", "tasks", "task_files", "requires", "gates"})
_PHASES = ("execution", "planning")
_TASK_KEYS = frozenset(
    {
        "id",
        "title",
        "command",
        "shell",
        "depends_on",
        "writes",
        "intents",
        "timeout",
        "retries",
        "max_dispatches",
        "gates",
        "cwd",
        "env",
        "metadata",
        "grace",
        "heartbeat",
        "requires",
        "phase",
        "produces",
        "clarify",
    }
    | AGENT_KEYS
)


_GATE_KEYS = frozenset({"id", "command", "shell", "timeout", "files"})


class SliceExtras(NamedTuple):
    """What a slice gives its complete-slice unit: the artifacts it requires, its gates."""

    requires: tuple[str, ...]
    gates: tuple[str, ...]
    gate_specs: tuple[GateSpec, ...]


@dataclass
class _Task:
    node: UnitNode  # built without edges; edges are added by compile_plan
    explicit_deps: tuple[str, ...] | None


def _type_name(value: object) -> str:
    for typ, name in (
        (bool, "boolean"),
        (int, "integer"),
        (float, "float"),
        (str, "string"),
        (list, "array"),
        (dict, "table"),
        (datetime, "datetime"),
        (date, "date"),
        (time, "time"),
    ):
        if isinstance(value, typ):
            return name
    return type(value).__name__


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # TOML true is not 1


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


class _Parser:
    """Validates the decoded TOML; every check raises a PlanError at once."""

    def __init__(
        self,
        filename: str,
        files: Mapping[str, str] | None = None,
        globs: Mapping[str, Sequence[str]] | None = None,
    ):
        self.file = filename
        self.allow_outside_root = False
        self.files = files or {}  # task file (normalised path) -> text, as the shell read it
        self.globs = globs or {}  # task_files pattern -> the files it matched, as the shell globbed

    def fail(self, problem: str, task: str | None = None) -> PlanError:
        return PlanError(self.file, problem, task)

    def table(self, value: object, what: str, task: str | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{what} must be a table, got {_type_name(value)}", task)
        return value

    def array_of_tables(self, value: object, what: str) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(f"{what} must be an array of tables ([[{what}]])")
        return value

    def keys(self, table: dict[str, Any], allowed: frozenset[str], what: str, task: str | None = None) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{what}unknown key '{key}' (allowed: {', '.join(sorted(allowed))})", task)

    def ident(self, value: object, what: str, task: str | None = None) -> str:
        if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
            if value is None:
                raise self.fail(f"{what} is missing", task)
            shown = repr(value) if isinstance(value, str) else _type_name(value)
            raise self.fail(f"{what} must be a string matching {ID_PATTERN.pattern}, got {shown}", task)
        return value

    def string(self, table: dict[str, Any], key: str, what: str = "", task: str | None = None) -> str:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise self.fail(f"{what}{key} must be a string, got {_type_name(value)}", task)
        return value

    def strings(self, value: object, key: str, task: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be an array of non-empty strings", task)
        for i, v in enumerate(value):
            if v in value[:i]:
                raise self.fail(f"{key} lists '{v}' twice", task)
        return tuple(value)

    def path(self, value: str, key: str, task: str | None) -> str:
        if "\0" in value:
            raise self.fail(f"{key} path {value!r} contains a NUL byte", task)
        absolute = value.startswith(("/", "\\")) or bool(PureWindowsPath(value).drive)
        norm = posixpath.normpath(value)
        escapes = norm == ".." or norm.startswith("../")
        if (absolute or escapes) and not self.allow_outside_root:
            why = "is absolute" if absolute else "escapes the plan root"
            raise self.fail(
                f"{key} path '{value}' {why}; paths are relative to the plan root "
                "(set [plan] allow_outside_root = true to allow this)",
                task,
            )
        return norm

    def intents(self, value: object, tid: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``intents = { read = [...], write = [...] }``: paths, directories and
        globs relative to the plan root (behaviour §12, uok.domain.plan.intents)."""
        table = self.table(value, "intents", tid)
        for key in table:
            if key not in ("read", "write"):
                raise self.fail(f"intents: unknown key '{key}' (allowed: read, write)", tid)

        def patterns(key: str) -> tuple[str, ...]:
            found = self.strings(table.get(key, []), f"intents.{key}", tid)
            return tuple(dict.fromkeys(self.path(p, f"intents.{key}", tid) for p in found))

        return patterns("read"), patterns("write")

    def modes(self, metadata: dict[str, Any], tid: str) -> None:
        """A task's mode overrides (behaviour §5) must be usable: a typo in a
        permission profile must not widen it, nor crash the run at dispatch."""
        try:
            node_modes(metadata, {"work_mode": "auto", "model_mode": "default", "permission_profile": "standard"})
        except ModeError as exc:
            raise self.fail(f"metadata: {exc}", tid) from None

    def json_value(self, value: object, where: str, task: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self.json_value(v, f"{where}.{k}", task)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.json_value(v, f"{where}[{i}]", task)
        elif isinstance(value, float) and not math.isfinite(value):
            raise self.fail(f"{where} is {value}, which JSON cannot hold", task)
        elif not isinstance(value, (str, int, float, bool)):
            raise self.fail(f"{where} is a TOML {_type_name(value)}, which JSON cannot hold; use a string", task)

    def gates(self, value: object, tid: str) -> tuple[tuple[str, ...], tuple[GateSpec, ...]]:
        """``gates``: ids, or inline tables with an id and options."""
        if not isinstance(value, list):
            raise self.fail("gates must be an array of gate ids or inline tables", tid)
        ids: list[str] = []
        specs: list[GateSpec] = []
        for i, g in enumerate(value):
            where = f"gates[{i}]"
            gid: object
            if isinstance(g, str):
                gid = g
            elif isinstance(g, dict):
                self.keys(g, _GATE_KEYS, f"{where}: ", tid)
                gid = g.get("id")
                specs.append(self.gate_spec(g, where, tid))
            else:
                raise self.fail(f"{where} must be a gate id or an inline table, got {_type_name(g)}", tid)
            if not isinstance(gid, str) or not gid:
                raise self.fail(f"{where}: id must be a non-empty string", tid)
            if gid in ids:
                raise self.fail(f"gates lists '{gid}' twice", tid)
            ids.append(gid)
        return tuple(ids), tuple(specs)

    def gate_spec(self, g: dict[str, Any], where: str, tid: str) -> GateSpec:
        shell = g.get("shell", False)
        if not isinstance(shell, bool):
            raise self.fail(f"{where}: shell must be a boolean, got {_type_name(shell)}", tid)
        command: tuple[str, ...] | None = None
        raw = g.get("command")
        if isinstance(raw, str) and shell and raw.strip():
            command = (raw,)
        elif isinstance(raw, list) and not shell and raw and all(isinstance(a, str) for a in raw) and raw[0]:
            command = tuple(raw)
        elif raw is not None:
            need = "a non-empty string (shell = true)" if shell else "a non-empty array of strings (argv)"
            raise self.fail(f"{where}: command must be {need}", tid)
        timeout = g.get("timeout")
        if timeout is not None and not (_is_number(timeout) and math.isfinite(timeout) and timeout > 0):
            raise self.fail(f"{where}: timeout must be a number of seconds > 0, got {timeout!r}", tid)
        files = tuple(
            self.path(f, f"{where}.files", tid) for f in self.strings(g.get("files", []), f"{where}.files", tid)
        )
        return GateSpec(
            id=str(g.get("id", "")),
            command=command,
            shell=shell,
            timeout=float(timeout) if timeout is not None else None,
            files=files,
        )

    # -- levels ---------------------------------------------------------------

    def plan(
        self, doc: dict[str, Any]
    ) -> tuple[str, str, list[tuple[str, list[tuple[str, str, list[_Task], SliceExtras]]]]]:
        """-> (plan id, title, [(milestone id, [(slice id, slice title, tasks, extras)])])."""
        self.keys(doc, _TOP_KEYS, "")
        head = self.table(doc.get("plan", {}), "[plan]")
        self.keys(head, _PLAN_KEYS, "[plan]: ")
        allow = head.get("allow_outside_root", False)
        if not isinstance(allow, bool):
            raise self.fail(f"[plan]: allow_outside_root must be a boolean, got {_type_name(allow)}")
        self.allow_outside_root = allow
        if "id" in head:
            plan_id = self.ident(head["id"], "[plan]: id")
        else:
            plan_id = PurePath(self.file).stem
            if not ID_PATTERN.fullmatch(plan_id):
                raise self.fail(f"plan id {plan_id!r} taken from the file name is not a valid id; set [plan] id")
        title = self.string(head, "title", "[plan]: ")

        milestones = []
        seen_tasks: set[str] = set()
        seen_milestones: set[str] = set()
        for m_pos, m in enumerate(self.array_of_tables(doc.get("milestones", []), "milestones"), 1):
            mid = self.ident(m.get("id"), f"milestone #{m_pos}: id")
            if mid in seen_milestones:
                raise self.fail(f"duplicate milestone id '{mid}'")
            seen_milestones.add(mid)
            where = f"milestone '{mid}': "
            self.keys(m, _MILESTONE_KEYS, where)
            self.string(m, "title", where)
            m_requires = self.requires(m.get("requires"), where)
            slices = []
            seen_slices: set[str] = set()
            for s_pos, s in enumerate(self.array_of_tables(m.get("slices", []), "milestones.slices"), 1):
                sid = self.ident(s.get("id"), f"{where}slice #{s_pos}: id")
                if sid in seen_slices:
                    raise self.fail(f"{where}duplicate slice id '{sid}'")
                seen_slices.add(sid)
                s_where = f"milestone '{mid}' slice '{sid}': "
                self.keys(s, _SLICE_KEYS, s_where)
                s_title = self.string(s, "title", s_where)
                s_requires = m_requires + tuple(
                    r for r in self.requires(s.get("requires"), s_where) if r not in m_requires
                )
                tasks = []
                for t_pos, t in enumerate(self.array_of_tables(s.get("tasks", []), "milestones.slices.tasks"), 1):
                    if "file" in t:
                        self.keys(t, TASK_FILE_KEYS, f"{s_where}task #{t_pos}: ")
                        tasks.append(self.file_task(t["file"], mid, sid, seen_tasks))
                        continue
                    tid = self.ident(t.get("id"), f"{s_where}task #{t_pos}: id")
                    if tid in seen_tasks:
                        raise self.fail("duplicate task id (task ids are unique across the plan)", tid)
                    seen_tasks.add(tid)
                    tasks.append(self.task(t, tid, mid, sid))
                for pattern in self.patterns(s.get("task_files"), s_where):
                    for path in self.globs.get(pattern, ()):
                        tasks.append(self.file_task(path, mid, sid, seen_tasks))
                tasks = [gated(t, s_requires) for t in tasks]
                # the slice's own gates run on its complete-slice unit (behaviour §13)
                s_gates = self.gates(s.get("gates", []), complete_slice_id(mid, sid))
                slices.append((sid, s_title, tasks, SliceExtras(s_requires, *s_gates)))
            milestones.append((mid, slices))
        return plan_id, title, milestones

    def requires(self, value: object, where: str, task: str | None = None) -> tuple[str, ...]:
        """``requires``: artifact paths that must exist, non-blank, before the
        execution units below may be dispatched; ``true`` is the seed's
        default set (behaviour §11: a finalized CONTEXT.md and a RESEARCH.md)."""
        if value is None or value is False:
            return ()
        if value is True:
            return DEFAULT_REQUIRES
        if not isinstance(value, list):
            raise self.fail(f"{where}requires must be true or an array of file paths", task)
        return tuple(self.path(p, "requires", task) for p in self.strings(value, f"{where}requires", task or ""))

    def patterns(self, value: object, where: str) -> list[str]:
        """A slice's ``task_files``: one glob or an array of globs."""
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(v, str) and v for v in items):
            raise self.fail(f"{where}task_files must be a glob (string) or an array of globs")
        return list(items)

    def file_task(self, ref: object, mid: str, sid: str, seen: set[str]) -> _Task:
        """A task whose fields are the frontmatter of a Markdown file and whose
        prompt is its body (:mod:`uok.domain.plan.taskfiles`); errors name the
        task file and the line."""
        if not isinstance(ref, str) or not ref:
            raise self.fail(f"file must be a task file's path, got {_type_name(ref)}")
        rel = self.path(ref, "file", None)
        text = self.files.get(rel)
        if text is None:
            raise self.fail(f"task file '{rel}' was not read (no such file?)")
        tf = parse_task_file(rel, text)
        fields = dict(tf.fields)
        fields.setdefault("id", PurePath(rel).stem)
        sub = _Parser(tf.path)
        sub.allow_outside_root = self.allow_outside_root
        try:
            tid = sub.ident(fields.get("id"), "id")
            if tid in seen:
                raise sub.fail("duplicate task id (task ids are unique across the plan)", tid)
            task = sub.task(fields, tid, mid, sid)
        except PlanError as exc:
            raise PlanError(line_of_problem(tf, exc.problem), exc.problem, exc.task) from None
        seen.add(tid)
        node = msgspec.structs.replace(task.node, body=tf.body, body_sha256=tf.body_sha256, source_file=rel)
        return _Task(node=node, explicit_deps=task.explicit_deps)

    def task(self, t: dict[str, Any], tid: str, mid: str, sid: str) -> _Task:
        self.keys(t, _TASK_KEYS, "", tid)
        shell = t.get("shell", False)
        if not isinstance(shell, bool):
            raise self.fail(f"shell must be a boolean, got {_type_name(shell)}", tid)
        command: tuple[str, ...] | None = None
        raw = t.get("command")
        if isinstance(raw, str):
            if not shell:
                raise self.fail("command is a string; use an argv array, or set shell = true", tid)
            if not raw.strip():
                raise self.fail("command must not be empty", tid)
            command = (raw,)
        elif isinstance(raw, list):
            if shell:
                raise self.fail("shell = true needs command to be a string, not an array", tid)
            if not raw or not all(isinstance(a, str) for a in raw) or not raw[0]:
                raise self.fail("command must be a non-empty array of strings (argv)", tid)
            command = tuple(raw)
        elif raw is not None:
            raise self.fail(f"command must be an array of strings or a string, got {_type_name(raw)}", tid)
        elif shell:
            raise self.fail("shell = true without a command", tid)

        timeout = t.get("timeout", DEFAULT_TIMEOUT)
        if not (_is_number(timeout) and math.isfinite(timeout) and timeout > 0):
            raise self.fail(f"timeout must be a number of seconds > 0, got {timeout!r}", tid)
        retries = t.get("retries", DEFAULT_RETRIES)
        if not (_is_int(retries) and retries >= 0):
            raise self.fail(f"retries must be an integer >= 0, got {retries!r}", tid)
        max_dispatches = t.get("max_dispatches", retries + RUNAWAY_HEADROOM)
        if not (_is_int(max_dispatches) and max_dispatches >= retries + 1):
            raise self.fail(
                f"max_dispatches must be an integer >= retries + 1 ({retries + 1}), got {max_dispatches!r}", tid
            )

        grace = t.get("grace")
        if grace is not None and not (_is_number(grace) and math.isfinite(grace) and grace >= 0):
            raise self.fail(f"grace must be a number of seconds >= 0, got {grace!r}", tid)
        heartbeat = t.get("heartbeat")
        if heartbeat is not None and not (_is_number(heartbeat) and math.isfinite(heartbeat) and heartbeat > 0):
            raise self.fail(f"heartbeat must be a number of seconds > 0, got {heartbeat!r}", tid)

        deps = self.strings(t["depends_on"], "depends_on", tid) if "depends_on" in t else None
        writes = tuple(self.path(w, "writes", tid) for w in self.strings(t.get("writes", []), "writes", tid))
        if len(set(writes)) != len(writes):
            raise self.fail("writes names the same file twice", tid)
        read_intents, write_intents = self.intents(t.get("intents", {}), tid)
        gates, gate_specs = self.gates(t.get("gates", []), tid)
        cwd = t.get("cwd")
        if cwd is not None:
            if not isinstance(cwd, str) or not cwd:
                raise self.fail(f"cwd must be a non-empty string, got {_type_name(cwd)}", tid)
            cwd = self.path(cwd, "cwd", tid)
        env = self.table(t.get("env", {}), "env", tid)
        for k, v in env.items():
            if not k or "=" in k or "\0" in k:
                raise self.fail(f"env key {k!r} is not a valid variable name", tid)
            if not isinstance(v, str) or "\0" in v:
                raise self.fail(f"env.{k} must be a string, got {_type_name(v)}", tid)
        metadata = self.table(t.get("metadata", {}), "metadata", tid)
        self.json_value(metadata, "metadata", tid)
        self.modes(metadata, tid)
        agent = parse_agent(self, t, tid)
        phase = t.get("phase", "execution")
        if phase not in _PHASES:
            raise self.fail(f"phase must be one of {', '.join(_PHASES)}, got {phase!r}", tid)
        requires = self.requires(t.get("requires"), "", tid)
        produces = tuple(self.path(p, "produces", tid) for p in self.strings(t.get("produces", []), "produces", tid))
        clarify = t.get("clarify", False)
        if clarify is True:
            clarify = CLARIFY_ROUND_LIMIT
        elif clarify is False:
            clarify = 0
        elif not (_is_int(clarify) and clarify >= 1):
            raise self.fail(f"clarify must be true or a number of rounds >= 1, got {clarify!r}", tid)

        node = UnitNode(
            id=tid,
            kind="unit",
            unit_type="execute-task",
            milestone=mid,
            slice=sid,
            title=self.string(t, "title", "", tid),
            writes=writes,
            read_intents=read_intents,
            write_intents=write_intents,
            command=command,
            shell=shell,
            timeout=float(timeout),
            retries=retries,
            max_dispatches=max_dispatches,
            gates=gates,
            gate_specs=gate_specs,
            cwd=cwd,
            env=dict(env),
            metadata=dict(metadata),
            grace=float(grace) if grace is not None else None,
            heartbeat=float(heartbeat) if heartbeat is not None else None,
            agent=agent,
            requires=requires,
            phase=phase,
            produces=produces,
            clarify_rounds=clarify,
        )
        return _Task(node=node, explicit_deps=deps)


def gated(task: _Task, inherited: tuple[str, ...]) -> _Task:
    """An execution task also requires its milestone's and slice's artifacts;
    a planning task (the one that writes them) only its own (behaviour §11)."""
    node = task.node
    if node.phase == "planning" or not inherited:
        return task
    requires = inherited + tuple(r for r in node.requires if r not in inherited)
    return _Task(node=msgspec.structs.replace(node, requires=requires), explicit_deps=task.explicit_deps)
