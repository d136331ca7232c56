"""Tasks as Markdown files with frontmatter (the seed's task-frontmatter;
behaviour §11): the fields of a task in a frontmatter block, its prompt in
the body.

A task file::

    +++                              # TOML frontmatter (or --- ... --- for YAML)
    id = "T01"                       # optional: default the file's stem
    title = "Write the parser"
    command = ["python3", "work.py"]
    writes = ["src/parser.py"]
    +++
    Write a parser for ... (the body: the task's prompt/instructions)

The frontmatter holds exactly the keys a ``[[milestones.slices.tasks]]``
table may hold and is validated by the same code; the body is handed to
the task as a file (``UOK_PROMPT_FILE``) and its SHA-256 is recorded in the
unit (``body_sha256``), so an edited prompt is a changed task.

Pure: the shell reads the files (:func:`referenced_task_files` says which)
and records their text in ``KernelEntered``; compiling the plan parses them
here, so a replay parses exactly what the run parsed. Decoding is the
standard library's ``tomllib`` and PyYAML's safe loader through
``msgspec.yaml``. Every error names the task file and the line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

import msgspec
from uok.domain.plan.model import PlanError

_DELIMITERS = {"+++": "TOML", "---": "YAML"}
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_YAML_AT = re.compile(r"line (\d+), column (\d+)")


class TaskFile(msgspec.Struct, frozen=True, kw_only=True):
    """One parsed task file: its frontmatter fields, the line of each
    top-level key (for messages), and the body."""

    path: str
    fields: dict[str, Any]
    lines: dict[str, int]
    body: str
    body_line: int

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    def where(self, key: str | None = None) -> str:
        """``path:line`` of ``key`` (the frontmatter's first line if unknown)."""
        return f"{self.path}:{self.lines.get(key or '', 1)}"


def parse_task_file(path: str, text: str) -> TaskFile:
    """Split and decode one task file; :class:`PlanError` naming ``path:line``."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines(keepends=True)
    opener = lines[0].strip() if lines else ""
    if opener not in _DELIMITERS:
        raise PlanError(f"{path}:1", "a task file starts with a frontmatter block: '+++' (TOML) or '---' (YAML)")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == opener), None)
    if end is None:
        raise PlanError(f"{path}:1", f"the frontmatter opened with '{opener}' is never closed")
    block = "".join(lines[1:end])
    fields = _decode(path, opener, block)
    body = "".join(lines[end + 1 :])
    return TaskFile(path=path, fields=fields, lines=_key_lines(block), body=body, body_line=end + 2)


def _decode(path: str, opener: str, block: str) -> dict[str, Any]:
    kind = _DELIMITERS[opener]
    try:
        if kind == "TOML":
            import tomllib

            value: Any = tomllib.loads(block)
        else:
            value = msgspec.yaml.decode(block.encode()) if block.strip() else {}
    except (ValueError, msgspec.DecodeError) as exc:  # TOMLDecodeError is a ValueError
        message = str(exc)
        found = (_TOML_AT if kind == "TOML" else _YAML_AT).findall(message)
        line = int(found[-1][0]) + 1 if found else 1  # + the opening delimiter
        detail = message.splitlines()[-2] if kind == "YAML" and "\n" in message else message
        detail = _TOML_AT.sub("", detail).strip()
        raise PlanError(f"{path}:{line}", f"malformed {kind} frontmatter: {detail}") from None
    if not isinstance(value, dict):
        raise PlanError(f"{path}:2", f"the {kind} frontmatter must be a table of task fields")
    return value


def _key_lines(block: str) -> dict[str, int]:
    """Line (in the file) of each top-level key of the frontmatter: the first
    unindented ``key =`` / ``key:`` line; good enough to point at a field."""
    found: dict[str, int] = {}
    for i, line in enumerate(block.splitlines(), 2):
        m = re.match(r"""^["']?([A-Za-z0-9_.-]+)["']?\s*[=:]""", line)
        if m and m.group(1) not in found:
            found[m.group(1)] = i
        t = re.match(r"^\[+\s*([A-Za-z0-9_-]+)", line)  # a TOML table header ([metadata])
        if t and t.group(1) not in found:
            found[t.group(1)] = i
    return found


def referenced_task_files(source: str) -> tuple[list[str], list[str]]:
    """The task files (``file = ...``) and globs (``task_files = ...``) a plan
    names, as written, for the shell to read. A plan that does not parse
    names none (compiling it reports the problem)."""
    import tomllib

    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError:
        return [], []
    files: list[str] = []
    globs: list[str] = []
    for m in _tables(doc.get("milestones")):
        for s in _tables(m.get("slices")):
            pattern = s.get("task_files")
            for p in pattern if isinstance(pattern, list) else [pattern]:
                if isinstance(p, str) and p:
                    globs.append(p)
            for t in _tables(s.get("tasks")):
                if isinstance(t.get("file"), str) and t["file"]:
                    files.append(t["file"])
    return files, globs


def _tables(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def line_of_problem(task: TaskFile, problem: str) -> str:
    """``path:line`` for a validation problem: the line of the key the
    message starts with (``timeout must be ...``) or names (``unknown key 'x'``)."""
    m = re.search(r"unknown key '([^']+)'", problem) or re.match(r"([A-Za-z0-9_]+)", problem)
    key = m.group(1) if m else None
    if key not in task.lines:
        key = next((k for k in task.lines if problem.startswith(k)), None)
    return task.where(key)
