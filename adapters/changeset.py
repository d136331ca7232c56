"""What a turn really changed in the work tree (behaviour §10, §6).

A task declares the files it ``writes``; an agent writes whatever it likes.
The security gate and gitops therefore judge the *real* change set: a
snapshot of the work tree is taken when the turn starts (before its
process runs) and compared with a later one.

* In a git work tree a snapshot is a git tree object, written through a
  private index (a copy of the real one, so unchanged files are not hashed
  again): every tracked and untracked file git would see, ``.gitignore``
  respected, the real index and ``HEAD`` untouched. Two snapshots compare
  with ``git diff-tree``; the later one is also what gitops commits, blob
  for blob, so what is committed is exactly what was compared.
* Outside git a snapshot is each file's size, modification and change
  time; a file whose triple differs, or that appeared or vanished, changed.

Paths are reported relative to the snapshot's top (the repository's top
level, or the plan's directory outside git). The log and the turns' output
files are never part of a snapshot.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from uok.adapters.gitops import DEFAULT_TIMEOUT, GitResult, run_git
from uok.domain import events as ev
from uok.domain.errors import RuntimeFailure


class Snapshot(NamedTuple):
    """A work tree at one moment: a git tree id, or a stat map outside git."""

    tree: str = ""
    stats: dict[str, tuple[int, int, int]] | None = None


class ChangeSet(NamedTuple):
    """A turn's changes: paths relative to ``top``; ``after`` is the later snapshot."""

    top: Path
    changed: tuple[str, ...]  # added or modified, present in the work tree
    deleted: tuple[str, ...]
    after: Snapshot

    @property
    def paths(self) -> tuple[str, ...]:
        return self.changed + self.deleted


class SnapshotError(RuntimeFailure, RuntimeError):
    """A snapshot could not be taken (git failed or timed out)."""


class WorkTree:
    """Snapshots of one directory tree, with git when it is a git work tree."""

    def __init__(self, root: Path, *, exclude: Sequence[Path] = (), timeout: float = DEFAULT_TIMEOUT):
        self.root = Path(root).resolve()
        self.timeout = timeout
        top = run_git(self.root, ["rev-parse", "--show-toplevel"], timeout=timeout)
        self.git = top.status == "ok" and bool(top.stdout)
        self.top = Path(top.stdout).resolve() if self.git else self.root
        self.exclude = [Path(p).resolve() for p in exclude]

    def relative(self, paths: Sequence[str | Path]) -> list[str]:
        """Paths (relative to the root, or absolute) as the top-relative paths snapshots use."""
        out = []
        for p in paths:
            with contextlib.suppress(ValueError):
                out.append((self.root / p).resolve().relative_to(self.top).as_posix())
        return out

    # ------------------------------------------------------------------ git

    def git_call(self, args: list[str], env: dict[str, str] | None = None) -> GitResult:
        return run_git(self.top, args, timeout=self.timeout, env=env)

    def _globs(self) -> list[str]:
        """The log and output files as glob pathspecs: the log with every file
        beside it that starts with its name (``-wal``, ``-shm``, ``-head``,
        the ``.duckdb`` copy), and everything under the outputs directory."""
        out = []
        for p in self.exclude:
            with contextlib.suppress(ValueError):
                rel = p.relative_to(self.top).as_posix()
                out += [f"{rel}*", f"{rel}/**"]
        return out

    def pathspec(self) -> list[str]:
        """``:/`` minus the log and output files (for ``git status``)."""
        return ["--", ":/"] + [f":(top,exclude,glob){g}" for g in self._globs()]

    def _git_snapshot(self) -> Snapshot:
        with tempfile.TemporaryDirectory(prefix="uok-snap-") as tmp:
            index = Path(tmp) / "index"
            env = {"GIT_INDEX_FILE": str(index)}
            real = self.git_call(["rev-parse", "--git-path", "index"])
            real_index = (self.top / real.stdout) if real.status == "ok" else None
            if real_index is not None and real_index.is_file():
                shutil.copyfile(real_index, index)  # its stat cache: unchanged files are not hashed again
            else:
                head = self.git_call(["rev-parse", "--verify", "-q", "HEAD"])
                if head.status == "ok":
                    self._ok(self.git_call(["read-tree", head.stdout], env=env), "read-tree")
            self._ok(self.git_call(["add", "-A", "--", ":/"], env=env), "add")  # .gitignore respected
            globs = self._globs()
            if globs:  # taken out again (an exclude pathspec naming an ignored file would make add fail)
                rm = ["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *(f":(top,glob){g}" for g in globs)]
                self._ok(self.git_call(rm, env=env), "rm --cached")
            tree = self._ok(self.git_call(["write-tree"], env=env), "write-tree")
        return Snapshot(tree=tree.stdout)

    @staticmethod
    def _ok(r: GitResult, step: str) -> GitResult:
        if r.status != "ok":
            raise SnapshotError(f"git {step}: {r.error or r.status}")
        return r

    # ------------------------------------------------------------------ files

    def _stat_snapshot(self) -> Snapshot:
        stats: dict[str, tuple[int, int, int]] = {}
        skip = {str(p) for p in self.exclude}
        for dirpath, dirnames, filenames in os.walk(self.top):
            dirnames[:] = [d for d in dirnames if d != ".git" and os.path.join(dirpath, d) not in skip]
            for name in filenames:
                full = os.path.join(dirpath, name)
                if full in skip or any(full.startswith(s + "-") for s in skip):
                    continue
                with contextlib.suppress(OSError):
                    st = os.lstat(full)
                    stats[os.path.relpath(full, self.top)] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        return Snapshot(stats=stats)

    # ------------------------------------------------------------------ both

    def snapshot(self) -> Snapshot:
        return self._git_snapshot() if self.git else self._stat_snapshot()

    def diff(self, before: Snapshot, after: Snapshot) -> ChangeSet:
        if before.stats is not None and after.stats is not None:
            b, a = before.stats, after.stats
            changed = tuple(sorted(p for p, s in a.items() if b.get(p) != s))
            deleted = tuple(sorted(p for p in b if p not in a))
            return ChangeSet(self.top, changed, deleted, after)
        r = self._ok(
            self.git_call(["diff-tree", "-r", "-z", "--no-renames", "--name-status", before.tree, after.tree]),
            "diff-tree",
        )
        parts = r.stdout.split("\0")
        added: list[str] = []
        removed: list[str] = []
        for status, path in zip(parts[0::2], parts[1::2], strict=False):
            (removed if status == "D" else added).append(path)
        return ChangeSet(self.top, tuple(added), tuple(removed), after)


class ChangeTracker:
    """A turn observer that snapshots the work tree when a turn starts, so
    its change set can be asked for later (by the security gate, by gitops).

    With several workers, turns run side by side in one work tree and a
    file one writes shows up in the other's window too. A changed path that
    another turn running at the same time *declares* in its ``writes`` (and
    this one does not) is that turn's, left out of this turn's change set;
    an undeclared one stays in every window it appeared in (the security
    gate scans it more than once rather than not at all).

    ``wanted(turn)`` says which turns need a snapshot (one costs a walk of
    the tree): by default every turn. ``writes(unit_id)`` gives a unit's
    declared writes, relative to ``tree.root``."""

    def __init__(
        self,
        tree: WorkTree,
        *,
        wanted: Callable[[ev.TurnStarted], bool] = lambda _t: True,
        writes: Callable[[str], Sequence[str]] = lambda _u: (),
    ):
        self.tree = tree
        self.wanted, self.writes = wanted, writes
        self._before: dict[str, Snapshot | SnapshotError] = {}
        self._declared: dict[str, frozenset[str]] = {}  # turn id -> its unit's writes, relative to the top
        self._overlaps: dict[str, set[str]] = {}  # turn id -> turns that ran while it did
        self._active: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, turn_id: str, declared: Sequence[str] = ()) -> Snapshot | SnapshotError:
        try:
            snap: Snapshot | SnapshotError = self.tree.snapshot()
        except SnapshotError as exc:
            snap = exc
        mine = frozenset(self._relative(declared))
        with self._lock:
            self._before[turn_id] = snap
            self._declared[turn_id] = mine
            self._overlaps[turn_id] = set(self._active)
            for other in self._active:
                self._overlaps.setdefault(other, set()).add(turn_id)
            self._active.add(turn_id)
        return snap

    def _relative(self, paths: Sequence[str]) -> list[str]:
        return self.tree.relative(paths)

    def before(self, turn_id: str) -> Snapshot | SnapshotError | None:
        with self._lock:
            return self._before.get(turn_id)

    def declared(self, turn_id: str) -> frozenset[str]:
        with self._lock:
            return self._declared.get(turn_id, frozenset())

    def active(self) -> set[str]:
        """The turns started and not finished."""
        with self._lock:
            return set(self._active)

    def concurrent(self, turn_id: str) -> set[str]:
        """The turns that ran while this one did."""
        with self._lock:
            return set(self._overlaps.get(turn_id, ()))

    def changes(self, turn_id: str, after: Snapshot | None = None) -> ChangeSet | None:
        """The turn's changes since it started (to ``after``, else now); None
        if no snapshot was taken for it. Raises :class:`SnapshotError` when
        the tree cannot be read."""
        before = self.before(turn_id)
        if before is None:
            return None
        if isinstance(before, SnapshotError):
            raise before
        full = self.tree.diff(before, after if after is not None else self.tree.snapshot())
        with self._lock:
            mine = self._declared.get(turn_id, frozenset())
            theirs = set().union(*(self._declared.get(t, frozenset()) for t in self._overlaps.get(turn_id, ())))
        theirs -= mine
        if not theirs:
            return full
        return full._replace(
            changed=tuple(p for p in full.changed if p not in theirs),
            deleted=tuple(p for p in full.deleted if p not in theirs),
        )

    def forget(self, turn_id: str) -> None:
        with self._lock:
            self._before.pop(turn_id, None)
            self._active.discard(turn_id)
            for t in [t for t in self._overlaps if t not in self._active]:
                if not self._overlaps[t] & self._active:  # nothing running can still ask about it
                    del self._overlaps[t]
                    self._declared.pop(t, None)

    # ------------------------------------------------------------------ observer

    def on_turn_start(self, turn: ev.TurnStarted) -> None:
        if self.wanted(turn):
            self.begin(turn.turn_id, self.writes(turn.unit_id))

    def on_phase_result(self, phase: str, action: str, data: dict[str, Any]) -> None:
        return None

    def on_turn_result(self, result: ev.TurnFinished) -> None:
        self.forget(result.turn_id)


def attach_tracker(
    root: Path,
    *,
    registry: Any,
    gate_types: dict[str, str],
    node: Callable[[str], Any],
    graph_gates: Sequence[tuple[str, ...]],
    exclude: Sequence[Path] = (),
    always: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> ChangeTracker | None:
    """The run's change tracker, handed to its security gates; None when no
    task lists a security gate (and ``always`` is false): nothing to snapshot.

    ``node(unit_id)`` reads a unit of the running plan (sub-agents included)."""
    secure = {gid for gid, gtype in gate_types.items() if gtype == "security"}
    if not always and not any(secure.intersection(gates) for gates in graph_gates):
        return None

    def wanted(turn: ev.TurnStarted) -> bool:
        return always or bool(secure.intersection(node(turn.unit_id).gates))

    tracker = ChangeTracker(
        WorkTree(root, exclude=exclude, timeout=timeout), wanted=wanted, writes=lambda u: node(u).writes
    )
    for gate in registry.list():
        if getattr(gate, "type", "") == "security" and hasattr(gate, "changes"):
            gate.changes = tracker.changes
    return tracker
