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


MAX_PLAN_BYTES_ENV = "UOK_MAX_PLAN_BYTES"
DEFAULT_MAX_PLAN_BYTES = 8 * 1024 * 1024
"""A plan (its file and its task files together) larger than this is refused
(exit 2) before it is parsed: every run records the plan's text, and a 20 MB
plan took 27 s and 282 MB to start. ``UOK_MAX_PLAN_BYTES`` changes it."""


def max_plan_bytes() -> int:
    raw = os.environ.get(MAX_PLAN_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PLAN_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{MAX_PLAN_BYTES_ENV} must be a positive number of bytes, got {raw!r}")
    return int(raw)


def _too_big(path: Path, size: int, limit: int) -> InputError:
    return InputError(
        f"{path}: the plan is {size:,} bytes with its task files, over the limit of {limit:,} "
        f"(set {MAX_PLAN_BYTES_ENV} to allow more)"
    )


def _read(path: Path, what: str, limit: int | None = None) -> str:
    try:
        if limit is not None and path.stat().st_size > limit:  # refuse before reading it all
            raise _too_big(path, path.stat().st_size, limit)
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {what}: {exc}") from None


def read_plan(path: Path) -> PlanSources:
    """The plan file and every task file it names; a missing or unreadable
    file is bad input (exit 2), named by its path."""
    path = Path(path)
    limit = max_plan_bytes()
    source = _read(path, "plan file", limit)
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
            files[key] = _read(root / key, "task file", limit)
    size = len(source.encode()) + sum(len(text.encode()) for text in files.values())
    if size > limit:
        raise _too_big(path, size, limit)
    return PlanSources(path, source, files, globs)


def load_plan_sources(path: Path) -> tuple[PlanSources, UnitGraph]:
    sources = read_plan(path)
    return sources, sources.compile()
