"""Reading a plan from disk: the TOML file and the Markdown task files it
names (``file = ...``, a slice's ``task_files = "glob"``), so that compiling
it (pure, :mod:`uok.domain.plan`) needs no file system.

Everything read here is recorded in ``KernelEntered`` (``plan_source``,
``plan_files``, ``plan_globs``): a replay compiles exactly the text the run
compiled, whatever the files say later.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import NamedTuple

from uok.domain.plan import PlanError, UnitGraph, compile_plan
from uok.domain.plan.taskfiles import referenced_task_files

from uok.errors import InputError


class PlanSources(NamedTuple):
    """What a plan is made of, as read: the TOML text, each task file's
    text (normalised path relative to the plan's directory -> text), and
    each glob's matches (pattern -> sorted paths)."""

    path: Path
    source: str
    files: dict[str, str]
    globs: dict[str, tuple[str, ...]]

    def compile(self) -> UnitGraph:
        try:
            return compile_plan(self.source, filename=str(self.path), files=self.files, globs=self.globs)
        except PlanError as exc:
            raise InputError(_shown(exc, self.path)) from None


def _shown(exc: PlanError, plan: Path) -> str:
    """A problem in a task file names it as the user can open it (beside the plan)."""
    if exc.file == str(plan):
        return str(exc)
    return str(PlanError(str(plan.parent / exc.file), exc.problem, exc.task))


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None


def read_plan(path: Path) -> PlanSources:
    """The plan file and every task file it names; a missing or unreadable
    file is bad input (exit 2), named by its path."""
    path = Path(path)
    source = _read(path, "plan file")
    root = path.parent
    refs, patterns = referenced_task_files(source)
    globs: dict[str, tuple[str, ...]] = {}
    for pattern in patterns:
        matches = sorted(
            posixpath.normpath(Path(os.path.relpath(p, root)).as_posix()) for p in root.glob(pattern) if p.is_file()
        )
        globs[pattern] = tuple(matches)
    files: dict[str, str] = {}
    for ref in [*refs, *(m for ms in globs.values() for m in ms)]:
        key = posixpath.normpath(ref)
        if key not in files:
            files[key] = _read(root / key, "task file")
    return PlanSources(path, source, files, globs)


def load_plan_sources(path: Path) -> tuple[PlanSources, UnitGraph]:
    sources = read_plan(path)
    return sources, sources.compile()
