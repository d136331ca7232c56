"""Where a turn's files live: its output logs, its feedback file, its progress file.

Every turn that runs a command gets, under the *logs directory*::

    <logs>/<run id>/<unit>.<iteration>.stdout     the task's stdout, redacted as written
    <logs>/<run id>/<unit>.<iteration>.stderr     its stderr, likewise (either: none if it stayed empty)
    <logs>/<run id>/<unit>.<iteration>.feedback.json   what earlier attempts left (uok.adapters.feedback)
    <logs>/<run id>/<unit>.<iteration>.progress   where the task reports progress (one line per report)
    <logs>/blobs/<sha[:2]>/<sha256>              long texts of agent steps, by content (uok.adapters.agents)

``<unit>`` is the unit id with every character outside ``[A-Za-z0-9_.-]``
replaced by ``_`` (a sub-agent's ``parent/child`` id has a slash), and
``<iteration>`` the turn's iteration in its run (the number after the colon
of its turn id), so a unit's attempts sort in order.

The logs directory is, in this order:

1. ``UOK_LOGS_DIR`` when set (a shared disk, a bigger disk);
2. for a SQLite log, ``logs/`` beside the log file (``.uok/logs/`` for the
   default ``.uok/events.db``);
3. for a log that is not a file (``postgresql://…``), ``.uok/logs/`` in the
   plan's directory (the project the plan belongs to; a test suite running
   plans in temporary directories never writes into the working directory).

The paths recorded in ``ExecutionFinished`` are relative to the SQLite
log's directory when they are inside it (so a ``.uok`` directory can be
moved or copied whole) and absolute otherwise (so ``uok logs`` finds a
PostgreSQL run's output from any directory on the machine that ran it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NamedTuple

ENV = "UOK_LOGS_DIR"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_ODD = re.compile(r"/\.|//|/$")  # a component pathlib would rewrite (".", "..", "", a trailing "/")


class TurnFiles(NamedTuple):
    """The files of one turn (absolute paths)."""

    stdout: Path
    stderr: Path
    feedback: Path
    progress: Path


def files_at(stem: str) -> TurnFiles:
    """The files of the turn whose paths start with ``stem`` (:meth:`LogsDir.stem`)."""
    return TurnFiles(
        stdout=Path(stem + ".stdout"),
        stderr=Path(stem + ".stderr"),
        feedback=Path(stem + ".feedback.json"),
        progress=Path(stem + ".progress"),
    )


def safe_name(unit_id: str) -> str:
    """A unit id as a file name: nothing outside ``[A-Za-z0-9_.-]``, never hidden."""
    name = _UNSAFE.sub("_", unit_id) or "_"
    return "_" + name if name.startswith(".") else name


def iteration_of(turn_id: str) -> str:
    """The iteration part of a turn id (``<run>:<iteration>``), or the whole id made safe."""
    tail = turn_id.rpartition(":")[2]
    return tail if tail.isdigit() else safe_name(turn_id)


class LogsDir:
    """The logs directory of one event log, and how its paths are recorded.

    ``base`` is the directory recorded paths are relative to (the SQLite
    log's directory), or None when they are recorded absolute."""

    def __init__(self, root: Path, base: Path | None = None):
        self.root = Path(root).absolute()
        self.base = Path(base).absolute() if base is not None else None
        # the same as strings: turn() and record() run once or twice per task (issue 15)
        self._root = str(self.root)
        self._base_prefix = str(self.base).rstrip("/") + "/" if self.base is not None else None
        self._prepared: dict[str, str] = {}  # run id -> the directory prepare() made

    @classmethod
    def for_store(cls, store: Any, *, plan_dir: Path | None = None, environ: dict[str, str] | None = None) -> LogsDir:
        """The logs directory of ``store`` for a run of a plan in ``plan_dir``
        (see the module docstring for the rule)."""
        environ = dict(os.environ) if environ is None else environ
        path = getattr(store, "path", None)
        base = Path(path).absolute().parent if path else None
        configured = environ.get(ENV, "").strip()
        if configured:
            return cls(Path(configured), base)
        if base is not None:
            return cls(base / "logs", base)
        return cls((plan_dir or Path.cwd()) / ".uok" / "logs", None)

    @property
    def blobs(self) -> Path:
        """Where agent steps' long texts are kept, by SHA-256 (uok.adapters.agents.stream)."""
        return self.root / "blobs"

    def stem(self, run_id: str, unit_id: str, turn_id: str) -> str:
        """The turn's files' common path, as a string: ``stem + ".stdout"`` and
        so on (the executor builds no ``Path`` per task, issue 15)."""
        return os.path.join(self._root, safe_name(run_id), f"{safe_name(unit_id)}.{iteration_of(turn_id)}")

    def turn(self, run_id: str, unit_id: str, turn_id: str) -> TurnFiles:
        return files_at(self.stem(run_id, unit_id, turn_id))

    def record(self, path: str | Path) -> str:
        """How ``path`` is written into an event."""
        text = os.fspath(path)
        prefix = self._base_prefix
        if prefix is not None and os.sep == "/" and text.startswith(prefix) and not _ODD.search(text, len(prefix) - 1):
            return text[len(prefix) :]  # a turn's file under the log's directory (what turn() builds)
        if self.base is None and text.startswith("/") and os.sep == "/" and not _ODD.search(text):
            return text  # already absolute and plain (what turn() builds): what Path.absolute() would give
        path = Path(path).absolute()
        if self.base is not None:
            try:
                return path.relative_to(self.base).as_posix()
            except ValueError:
                pass
        return str(path)

    def resolve(self, recorded: str) -> Path:
        """The file a recorded path names."""
        path = Path(recorded)
        if path.is_absolute() or self.base is None:
            return path
        return self.base / path

    def prepare(self, run_id: str) -> str:
        """Create the run's directory (0700: output may hold what redaction
        missed); once per run id and instance, not before every task."""
        made = self._prepared.get(run_id)
        if made is not None and os.path.isdir(made):  # one stat, no Path built
            return made
        directory = self.root / safe_name(run_id)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")  # outputs are never committed, wherever the directory is
        directory.mkdir(exist_ok=True, mode=0o700)
        made = self._prepared[run_id] = str(directory)
        return made
