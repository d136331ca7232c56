"""Gitops: each turn's git transaction, recorded stage by stage (behaviour §6).

A :class:`GitOps` is a turn observer. When the plan root is a git work tree
and gitops is enabled (flags ``gitops = true``; off by default), every turn
records ``GitTransactionRecorded`` observations:

=============  ==================  =============================================
stage          when                git work
=============  ==================  =============================================
``turn-start`` ``TurnStarted``     ``rev-parse HEAD``: the base commit
``stage``      dispatch phase      none (records that the unit was dispatched)
``checkpoint`` unit phase          ``status --porcelain``: what the unit changed
``publish``    finalize phase      the turn action (below)
``record``     ``TurnFinished``    none: the closeout (``failed`` iff the turn's
                                   failure class is ``git``)
=============  ==================  =============================================

Turn actions (``gitops_turn_action``): ``commit`` is the ``gitops`` publish
gate of :mod:`uok.adapters.gitpublish` (the unit's exact change set,
committed with ``Uok-Unit:`` / ``Uok-Turn:`` trailers before the unit
completes; a failed attempt's changes discarded, stage ``discard``); the
``publish`` stage records what that gate did; ``snapshot``
writes the work tree as a commit under ``refs/uok/snapshots/<run>/<n>``
through a private index, leaving HEAD, the index and the branch untouched;
``status-only`` records ``git status --porcelain`` dirtiness. ``commit`` and
``snapshot`` publish completed turns only; the event log's files are never
added.

Every git call has a timeout (10 s by default). A call that times out is
killed with its process group (so a hook cannot keep it alive), the stage is
recorded as ``timeout`` and the turn carries on: gitops is best effort and
never changes a kernel decision. A git ``index.lock`` left by the killed
call is removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
from uok.domain import events as ev
from uok.domain.events import GitTransactionRecorded

TURN_ACTIONS = ("commit", "snapshot", "status-only")
DEFAULT_TIMEOUT = 10.0
SNAPSHOT_REFS = "refs/uok/snapshots"
_PHASE_STAGE = {"dispatch": "stage", "unit": "checkpoint", "finalize": "publish"}


class GitResult(msgspec.Struct, frozen=True):
    status: str  # ok | failed | timeout
    stdout: str = ""
    error: str = ""
    duration_ms: int = 0
    returncode: int | None = None


def run_git(root: Path, args: Sequence[str], *, timeout: float, env: dict[str, str] | None = None) -> GitResult:
    """One git call with a hard timeout; never raises."""
    started = time.monotonic()
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=root,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as exc:
        return GitResult("failed", error=f"cannot run git: {exc.strerror or exc}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        ms = int((time.monotonic() - started) * 1000)
        return GitResult("timeout", error=f"git {args[0]} timed out after {timeout:g}s", duration_ms=ms)
    ms = int((time.monotonic() - started) * 1000)
    text = out.decode("utf-8", "replace").rstrip()  # keep porcelain's leading status columns
    if proc.returncode != 0:
        msg = err.decode("utf-8", "replace").strip().splitlines()
        return GitResult(
            "failed",
            stdout=text,
            error=(msg[-1] if msg else f"git {args[0]} exited {proc.returncode}")[:500],
            duration_ms=ms,
            returncode=proc.returncode,
        )
    return GitResult("ok", stdout=text, duration_ms=ms, returncode=0)


def is_git_work_tree(root: Path, timeout: float = DEFAULT_TIMEOUT) -> bool:
    r = run_git(root, ["rev-parse", "--is-inside-work-tree"], timeout=timeout)
    return r.status == "ok" and r.stdout == "true"


def snapshot_ref(turn_id: str) -> str:
    """``refs/uok/snapshots/<run>/<iteration>`` for turn ``<run>:<iteration>``."""
    return f"{SNAPSHOT_REFS}/" + re.sub(r"[^A-Za-z0-9._/-]", "_", turn_id.replace(":", "/"))


class _Turn(msgspec.Struct, kw_only=True):
    unit_id: str
    iteration: int
    stages: dict[str, str] = {}  # stage -> status


class GitOps:
    """A :class:`uok.adapters.observer.TurnObserver` that records git transactions."""

    def __init__(
        self,
        root: Path,
        *,
        record: Callable[[ev.Event], None],
        clock: Callable[[], datetime],
        action: str = "status-only",
        run_id: str = "",
        timeout: float = DEFAULT_TIMEOUT,
        exclude: Sequence[Path] = (),
        publisher: Any = None,
    ):
        if action not in TURN_ACTIONS:
            raise ValueError(f"gitops turn action must be one of {', '.join(TURN_ACTIONS)}, got {action!r}")
        self.root = Path(root).resolve()
        self.record, self.clock = record, clock
        self.action, self.run_id, self.timeout = action, run_id, timeout
        self.excluded = [f":(glob){p}" for p in self._inside(exclude)]  # the log, its sidecars, the outputs
        self.turns: dict[str, _Turn] = {}
        self.publisher = publisher  # commit: the gitops publish gate (uok.adapters.gitpublish.GitPublisher)
        self._identity: dict[str, str] | None = None

    def _inside(self, paths: Sequence[Path]) -> list[str]:
        out = []
        for p in paths:
            with contextlib.suppress(ValueError):
                rel = Path(p).resolve().relative_to(self.root).as_posix()
                out += [f"{rel}*", f"{rel}/**"]
        return out

    # ------------------------------------------------------------------ observer

    def on_turn_start(self, turn: ev.TurnStarted) -> None:
        self.turns[turn.turn_id] = _Turn(unit_id=turn.unit_id, iteration=turn.iteration)
        r = self._git(["rev-parse", "--verify", "-q", "HEAD"])
        if r.status == "failed" and r.returncode == 1:  # unborn branch: no commit yet
            r = msgspec.structs.replace(r, status="ok", error="")
        if self.publisher is not None:
            self.publisher.heads[turn.turn_id] = r.stdout
        self._stage(
            turn.turn_id, "turn-start", r, {"head": r.stdout, "iteration": turn.iteration, "unit_id": turn.unit_id}
        )

    def on_phase_result(self, phase: str, action: str, data: dict[str, Any]) -> None:
        turn_id = data.get("turn_id", "")
        stage = _PHASE_STAGE.get(phase)
        turn = self.turns.get(turn_id)
        if stage is None or turn is None or stage in turn.stages:
            return  # one record per stage and turn (spawn decisions add more unit-phase results)
        if stage == "stage":
            self._stage(turn_id, stage, GitResult("ok"), {"action": action})
        elif stage == "checkpoint":
            r = self._git(["status", "--porcelain"])
            self._stage(turn_id, stage, r, {"action": action, **_dirtiness(r)})
        else:
            self._publish(turn_id, turn, action)

    def on_turn_result(self, result: ev.TurnFinished) -> None:
        turn = self.turns.get(result.turn_id)
        if turn is None:
            return
        if self.publisher is not None:
            self.publisher.heads.pop(result.turn_id, None)
            self.publisher.results.pop(result.turn_id, None)
            if result.status != "completed":  # the retry (or the next run) starts from the attempt's start
                started = time.monotonic()
                detail = self.publisher.discard(result.turn_id)
                ms = int((time.monotonic() - started) * 1000)
                self._record(result.turn_id, "discard", detail.pop("status"), detail.pop("error", ""), ms, detail)
        self.turns.pop(result.turn_id, None)
        failed = result.failure_class == "git"
        self._record(
            result.turn_id,
            "record",
            "failed" if failed else "ok",
            "git closeout failure" if failed else "",
            0,
            {"action": "record", "turn_status": result.status, "stages": dict(turn.stages)},
        )

    # ------------------------------------------------------------------ publish

    def _publish(self, turn_id: str, turn: _Turn, outcome: str) -> None:
        if self.action == "status-only":
            r = self._git(["status", "--porcelain"])
            self._stage(turn_id, "publish", r, {"turn_outcome": outcome, **_dirtiness(r)})
            return
        if outcome != "completed":
            self._record(turn_id, "publish", "skipped", "", 0, {"reason": f"turn {outcome}: nothing published"})
            return
        if self.action == "commit":  # the gitops gate committed (or refused) before the unit completed
            results = self.publisher.results if self.publisher is not None else {}
            done = dict(results.pop(turn_id, {"status": "skipped", "summary": "no publish gate ran"}))
            status = done.pop("status")
            self._record(turn_id, "publish", status, done.pop("error", ""), 0, done)
            return
        started = time.monotonic()
        steps = self._snapshot(turn_id, turn)
        status, error, detail = steps
        self._record(turn_id, "publish", status, error, int((time.monotonic() - started) * 1000), detail)

    def _snapshot(self, turn_id: str, turn: _Turn) -> tuple[str, str, dict[str, Any]]:
        ref = snapshot_ref(turn_id)
        with tempfile.TemporaryDirectory(prefix="uok-snapshot-") as tmp:
            env = {**self._env(), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            head = self._git(["rev-parse", "--verify", "-q", "HEAD"])
            if head.status == "timeout":
                return head.status, head.error, {"step": "rev-parse"}
            parent = head.stdout if head.status == "ok" else ""
            if parent:
                r = self._git(["read-tree", parent], env=env)
                if r.status != "ok":
                    return r.status, r.error, {"step": "read-tree"}
            r = self._git(["add", "-A", "--", "."], env=env)
            if r.status != "ok":
                return r.status, r.error, {"step": "add"}
            if self.excluded:  # taken out again: an exclude pathspec naming an ignored file makes add fail
                r = self._git(["rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *self.excluded], env=env)
                if r.status != "ok":
                    return r.status, r.error, {"step": "rm --cached"}
            tree = self._git(["write-tree"], env=env)
            if tree.status != "ok":
                return tree.status, tree.error, {"step": "write-tree"}
        args = ["commit-tree", tree.stdout, "-m", self._message(turn_id, turn)] + (["-p", parent] if parent else [])
        commit = self._git(args, env=self._env())
        if commit.status != "ok":
            return commit.status, commit.error, {"step": "commit-tree"}
        r = self._git(["update-ref", ref, commit.stdout])
        if r.status != "ok":
            return r.status, r.error, {"step": "update-ref"}
        return "ok", "", {"ref": ref, "commit": commit.stdout}

    def _message(self, turn_id: str, turn: _Turn) -> str:
        return commit_message(turn.unit_id, turn_id)

    def _env(self) -> dict[str, str]:
        """A fallback identity when the repository has none configured."""
        if self._identity is None:
            self._identity = fallback_identity(self._git(["config", "user.email"]))
        return self._identity

    # ------------------------------------------------------------------ plumbing

    def _git(self, args: list[str], env: dict[str, str] | None = None) -> GitResult:
        started = time.time()
        r = run_git(self.root, args, timeout=self.timeout, env=env)
        if r.status == "timeout":
            self._clear_lock(started)
        return r

    def _clear_lock(self, since: float) -> None:
        """Remove an ``index.lock`` the call we just killed left behind."""
        gd = run_git(self.root, ["rev-parse", "--git-dir"], timeout=self.timeout)
        if gd.status != "ok":
            return
        lock = (self.root / gd.stdout) / "index.lock"
        with contextlib.suppress(OSError):
            if lock.stat().st_mtime >= since - 1:
                lock.unlink()

    def _stage(self, turn_id: str, stage: str, r: GitResult, detail: dict[str, Any]) -> None:
        self._record(turn_id, stage, r.status, r.error, r.duration_ms, detail)

    def _record(
        self, turn_id: str, stage: str, status: str, error: str, duration_ms: int, detail: dict[str, Any]
    ) -> None:
        turn = self.turns.get(turn_id)
        if turn is not None:
            turn.stages[stage] = status
        self.record(
            GitTransactionRecorded(
                run_id=self.run_id,
                at=self.clock(),
                turn_id=turn_id,
                stage=stage,
                action=self.action,
                status=status,
                error=error,
                duration_ms=duration_ms,
                detail=detail,
            )
        )


def fallback_identity(configured_email: GitResult) -> dict[str, str]:
    """The environment that gives git an author and committer ("uok") when
    the repository has no ``user.email`` (``configured_email`` is the answer
    of ``git config user.email``); empty when it has one."""
    if configured_email.status == "ok" and configured_email.stdout:
        return {}
    return {
        "GIT_AUTHOR_NAME": "uok",
        "GIT_AUTHOR_EMAIL": "uok@localhost",
        "GIT_COMMITTER_NAME": "uok",
        "GIT_COMMITTER_EMAIL": "uok@localhost",
    }


def commit_message(unit_id: str, turn_id: str) -> str:
    return f"uok: {unit_id} (turn {turn_id})\n\nUok-Unit: {unit_id}\nUok-Turn: {turn_id}\n"


def _dirtiness(r: GitResult) -> dict[str, Any]:
    if r.status != "ok":
        return {}
    files = [line[3:] for line in r.stdout.splitlines() if line.strip()]
    return {"dirty": len(files), "files": files[:20]}
