"""Gitops ``commit``: each unit's work committed exactly, by construction (behaviour §6).

``uok run --gitops commit`` makes every unit that runs a command end with
one more gate, ``gitops`` (type ``publish``; the kernel adds it, see
``uok.domain.kernel.rules.gating.gates_of``). The gate commits the turn's
change set and nothing else:

* the change set is the diff between the work-tree snapshot taken when the
  turn started and one taken now (:mod:`uok.adapters.changeset`): the
  user's uncommitted changes from before the run, other units' files and
  git-ignored files (the log in ``.uok/``) are never in it; nothing is ever
  ``git add``-ed in the user's index;
* every blob about to be committed is scanned for secrets first (a file the
  security gate did not scan is never committed): a finding fails the gate,
  class ``policy``;
* the commit is made from a private index (``HEAD``'s tree plus the turn's
  paths, blob for blob from the snapshot) with ``git commit`` (the
  repository's hooks run), with ``Uok-Unit`` / ``Uok-Turn`` trailers; the
  user's index is then told about those paths, and nothing else;
* with several units running at once, a changed file another running unit
  declares is that unit's; an undeclared one cannot be attributed and
  fails the gate with a message saying so (declare ``writes``, or run with
  ``--workers 1``); a path another unit committed since this turn began
  is a conflict, a clear failure;
* with ``[uok.gitops] push_remote`` set, the branch is pushed after each
  commit; a rejected push fails the gate.

A failed publish is a failed gate: the unit fails (class ``git``, its
retries apply, or ``policy``) and the run's exit code says so.

A failed attempt's changes are discarded before its retry starts (they are
kept on ``refs/uok/attempts/<run>/<iteration>`` for inspection): see
:meth:`GitPublisher.discard`, called by the gitops observer at the turn's end.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from uok.adapters.changeset import ChangeSet, ChangeTracker, SnapshotError, WorkTree
from uok.adapters.gitops import GitResult, commit_message, fallback_identity, snapshot_ref
from uok.domain.errors import InputError, RuntimeFailure
from uok.domain.policies.gates import GateContext, GateResult

GATE_ID = "gitops"
GATE_TYPE = "publish"
ATTEMPT_REFS = "refs/uok/attempts"
_ZERO = "0" * 40


class DirtyWorkTree(InputError):
    """``uok run --gitops commit`` on a work tree with uncommitted changes."""


class _Failed(RuntimeFailure):
    """A publish that cannot go ahead; caught here and recorded as the gate's failure."""

    def __init__(self, why: str, failure_class: str = "git"):
        super().__init__(why)
        self.failure_class = failure_class


class GitPublisher:
    """The ``gitops`` publish gate, and the discard of a failed attempt."""

    id = GATE_ID
    type = GATE_TYPE

    def __init__(
        self,
        tree: WorkTree,
        tracker: ChangeTracker,
        *,
        unit_of: Any = None,
        push_remote: str = "",
        push_timeout: float = 60.0,
    ):
        self.tree, self.tracker = tree, tracker
        self.unit_of = unit_of or (lambda turn_id: "")
        self.push_remote, self.push_timeout = push_remote, push_timeout
        self.heads: dict[str, str] = {}  # turn id -> HEAD when it started
        self.results: dict[str, dict[str, Any]] = {}  # turn id -> what its publish did (for the observer)
        self._lock = threading.Lock()  # one publish (or discard) at a time
        self._identity: dict[str, str] | None = None

    # ------------------------------------------------------------------ the run's start

    def dirty(self) -> list[str]:
        """Uncommitted changes in the work tree (the log and outputs excluded)."""
        r = self._git(["status", "--porcelain", "-z", "--untracked-files=all", *self.tree.pathspec()])
        if r.status != "ok":
            return [f"(git status failed: {r.error})"]
        return [entry[3:] for entry in r.stdout.split("\0") if len(entry) > 3]

    def refuse_dirty(self, allow: bool, *, inputs: tuple[Path, ...] = ()) -> None:
        """Raise :class:`DirtyWorkTree` on uncommitted changes, the run's own
        input files (the plan, recorded in the log) aside."""
        own = set(self.tree.relative(inputs))
        files = [f for f in self.dirty() if f not in own]
        if files and not allow:
            shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
            raise DirtyWorkTree(
                f"--gitops commit: the work tree has {len(files)} uncommitted change(s) ({shown}); "
                "commit or stash them first, or pass --allow-dirty to leave them out of every unit's commit"
            )

    def head(self) -> str:
        r = self._git(["rev-parse", "--verify", "-q", "HEAD"])
        return r.stdout if r.status == "ok" else ""

    # ------------------------------------------------------------------ the gate

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        try:
            with self._lock:
                result = self._publish(context)
        except _Failed as exc:
            self.results[context.turn_id] = {"status": "failed", "error": str(exc)}
            return GateResult(outcome="fail", failure_class=exc.failure_class, rationale=f"not committed: {exc}")
        except SnapshotError as exc:
            self.results[context.turn_id] = {"status": "failed", "error": str(exc)}
            return GateResult(outcome="fail", failure_class="git", rationale=f"not committed: {exc}")
        self.results[context.turn_id] = result
        return GateResult(outcome="pass", rationale=result["summary"])

    def _publish(self, ctx: GateContext) -> dict[str, Any]:
        cs = self.tracker.changes(ctx.turn_id)
        if cs is None:
            raise _Failed("the turn's start was not snapshotted: its change set is unknown")
        paths = self._attributed(ctx.turn_id, cs)
        head = self.head()
        entries = self._entries(cs.after.tree, list(cs.changed))
        ours = {p: entries.get(p) for p in paths}  # None: deleted
        now = self._entries(head, list(ours)) if head else {}
        ours = {p: e for p, e in ours.items() if now.get(p) != e}  # already so in HEAD: nothing to do
        self._check_conflicts(ctx.turn_id, head, ours)
        scanned = self._scan(ours)
        if not ours:
            pushed = self._push() if self.push_remote else ""
            return {"status": "skipped", "reason": "nothing to commit", "summary": "nothing to commit" + pushed}
        commit = self._commit(ctx, head, ours)
        self._sync_index(ours)
        pushed = self._push() if self.push_remote else ""
        files = sorted(ours)
        shown = ", ".join(files[:10]) + (f" and {len(files) - 10} more" if len(files) > 10 else "")
        return {
            "status": "ok",
            "commit": commit,
            "files": files[:50],
            "scanned": scanned,
            "summary": f"committed {commit[:12]}: {len(files)} file(s) ({shown}){pushed}",
        }

    def _attributed(self, turn_id: str, cs: ChangeSet) -> list[str]:
        """The turn's paths; an undeclared one is refused while another unit that ran alongside still runs."""
        mine = self.tracker.declared(turn_id)
        running = self.tracker.concurrent(turn_id) & self.tracker.active()
        unclear = [p for p in cs.paths if p not in mine] if running else []
        if unclear:
            raise _Failed(
                f"cannot tell which unit changed {', '.join(unclear[:5])}: undeclared, and "
                f"{len(running)} other unit(s) ran alongside; declare them in the task's writes, or run --workers 1",
                "policy",
            )
        return list(cs.paths)

    def _check_conflicts(self, turn_id: str, head: str, ours: dict[str, tuple[str, str] | None]) -> None:
        base = self.heads.get(turn_id, head)
        if not ours or base == head:
            return
        then = self._entries(base, list(ours)) if base else {}
        now = self._entries(head, list(ours)) if head else {}
        moved = [p for p in ours if then.get(p) != now.get(p)]
        if moved:
            raise _Failed(f"conflict: {', '.join(moved[:5])} committed by another unit since this turn began")

    def _scan(self, ours: dict[str, tuple[str, str] | None]) -> int:
        """Scan the exact blobs about to be committed; a finding refuses the commit."""
        from uok.adapters.secrets import ScannerUnavailable
        from uok.adapters.secretscan import scan_paths

        blobs = {p: e[1] for p, e in ours.items() if e is not None and e[0] != "160000"}
        if not blobs:
            return 0
        with tempfile.TemporaryDirectory(prefix="uok-publish-") as tmp:
            for path, data in zip(blobs, self._cat(list(blobs.values())), strict=True):
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            try:
                report = scan_paths(Path(tmp), list(blobs))
            except ScannerUnavailable as exc:
                raise _Failed(f"the secret scanner cannot run: {exc}", "policy") from None
        if report.findings:
            shown = ", ".join(f"{f.kind} at {f.file}:{f.line}" for f in report.findings[:5])
            raise _Failed(f"{len(report.findings)} secret(s) in the change set: {shown}", "policy")
        if report.unscannable:
            shown = "; ".join(f"{p}: {why}" for p, why in report.unscannable[:5])
            raise _Failed(f"files the secret scanner cannot read: {shown}", "policy")
        return len(report.scanned)

    def _commit(self, ctx: GateContext, head: str, ours: dict[str, tuple[str, str] | None]) -> str:
        """``git commit`` from a private index holding ``HEAD`` plus the
        turn's paths: the repository's hooks run, the user's index is not used."""
        lines = _index_info(ours)
        with tempfile.TemporaryDirectory(prefix="uok-commit-") as tmp:
            env = {**self._env(), "GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self._must(self._git(["read-tree", head] if head else ["read-tree", "--empty"], env=env), "read-tree")
            self._must(self._git_in(["update-index", "-z", "--index-info"], lines, env=env), "update-index")
            self._must(self._git(["commit", "-q", "-m", commit_message(ctx.unit_id, ctx.turn_id)], env=env), "commit")
        return self.head()

    def _sync_index(self, ours: dict[str, tuple[str, str] | None]) -> None:
        """The user's index learns the committed paths (else ``git status`` shows them staged backwards)."""
        self._git_in(["update-index", "-z", "--index-info"], _index_info(ours))

    def _push(self) -> str:
        branch = self._git(["symbolic-ref", "-q", "--short", "HEAD"])
        if branch.status != "ok":
            raise _Failed("HEAD is detached: no branch to push")
        r = run_timeout(
            self.tree, ["push", "-q", self.push_remote, f"HEAD:refs/heads/{branch.stdout}"], self.push_timeout
        )
        if r.status != "ok":
            raise _Failed(f"git push {self.push_remote} {branch.stdout} failed: {r.error}")
        return f"; pushed to {self.push_remote}/{branch.stdout}"

    # ------------------------------------------------------------------ a failed attempt

    def discard(self, turn_id: str) -> dict[str, Any]:
        """Put back what a failed attempt changed, so its retry starts from the
        tree the attempt started from; the attempt's tree is kept on a ref."""
        before = self.tracker.before(turn_id)
        if before is None or isinstance(before, SnapshotError):
            return {"status": "skipped", "reason": "no snapshot of the turn's start"}
        with self._lock:
            cs = self.tracker.changes(turn_id)
            if cs is None or not cs.paths:
                return {"status": "skipped", "reason": "the attempt changed nothing"}
            mine = self.tracker.declared(turn_id)
            running = self.tracker.concurrent(turn_id) & self.tracker.active()
            paths = [p for p in cs.paths if p in mine or not running]
            left = [p for p in cs.paths if p not in paths]
            ref, why_not = self._keep(turn_id, cs)
            if why_not:  # a secret: never kept on a ref, left where the user sees it (a policy failure: no retry)
                return {"status": "skipped", "reason": why_not, "left": list(cs.paths[:50])}
            old = self._entries(before.tree, paths)
            restore = [p for p in paths if p in old]
            with tempfile.TemporaryDirectory(prefix="uok-discard-") as tmp:
                env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
                if restore:
                    self._git(["read-tree", before.tree], env=env)
                    self._git_in(["checkout-index", "-f", "-z", "--stdin"], _nul(restore), env=env)
            removed = [p for p in paths if p not in old]
            for p in removed:
                _remove(self.tree.top, p)
        return {
            "status": "ok",
            "ref": ref,
            "restored": restore[:50],
            "removed": removed[:50],
            "left": left[:50],
        }

    def _keep(self, turn_id: str, cs: ChangeSet) -> tuple[str, str]:
        """Keep the attempt's tree on a ref, unless it holds a secret (never
        committed anywhere, not even on a side ref). Returns (ref, why not)."""
        try:
            self._scan(dict(self._entries(cs.after.tree, list(cs.changed))))
        except _Failed as exc:
            return "", f"not discarded, not kept on a ref: {exc}"
        head = self.head()
        ref = ATTEMPT_REFS + snapshot_ref(turn_id)[len("refs/uok/snapshots") :]
        args = ["commit-tree", cs.after.tree, "-m", f"uok: failed attempt {turn_id}"] + (["-p", head] if head else [])
        kept = self._git(args, env=self._env())
        if kept.status != "ok" or self._git(["update-ref", ref, kept.stdout]).status != "ok":
            return "", f"not discarded: the attempt's tree cannot be kept ({kept.error or 'update-ref failed'})"
        return ref, ""

    # ------------------------------------------------------------------ plumbing

    def _entries(self, tree: str, paths: list[str]) -> dict[str, tuple[str, str]]:
        """path -> (mode, object id) in ``tree`` for the given paths."""
        if not tree or not paths:
            return {}
        r = self._git(["ls-tree", "-r", "-z", tree])
        if r.status != "ok":
            raise _Failed(f"git ls-tree: {r.error}")
        want = set(paths)
        out: dict[str, tuple[str, str]] = {}
        for rec in r.stdout.split("\0"):
            meta, _, path = rec.partition("\t")
            if path in want:
                mode, _kind, oid = meta.split()
                out[path] = (mode, oid)
        return out

    def _cat(self, oids: list[str]) -> list[bytes]:
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.tree.top,
            input="".join(f"{o}\n" for o in oids).encode(),
            capture_output=True,
            timeout=max(self.tree.timeout, 30.0),
            check=False,
        )
        out, data, pos = [], proc.stdout, 0
        for _ in oids:
            nl = data.index(b"\n", pos)
            size = int(data[pos:nl].split()[2])
            out.append(data[nl + 1 : nl + 1 + size])
            pos = nl + 1 + size + 1
        return out

    def _git(self, args: list[str], env: dict[str, str] | None = None) -> GitResult:
        return self.tree.git_call(args, env=env)

    def _git_in(self, args: list[str], data: bytes, env: dict[str, str] | None = None) -> GitResult:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.tree.top,
                input=data,
                capture_output=True,
                timeout=self.tree.timeout,
                env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})},
                check=False,
            )
        except subprocess.TimeoutExpired:
            return GitResult("timeout", error=f"git {args[0]} timed out after {self.tree.timeout:g}s")
        if proc.returncode != 0:
            return GitResult("failed", error=proc.stderr.decode("utf-8", "replace").strip()[-500:])
        return GitResult("ok", stdout=proc.stdout.decode("utf-8", "replace").rstrip())

    @staticmethod
    def _must(r: GitResult, step: str) -> GitResult:
        if r.status != "ok":
            raise _Failed(f"git {step}: {r.error or r.status}")
        return r

    def _env(self) -> dict[str, str]:
        if self._identity is None:
            self._identity = fallback_identity(self._git(["config", "user.email"]))
        return self._identity


def run_timeout(tree: WorkTree, args: list[str], timeout: float) -> GitResult:
    from uok.adapters.gitops import run_git

    return run_git(tree.top, args, timeout=timeout)


def _index_info(ours: dict[str, tuple[str, str] | None]) -> bytes:
    """``git update-index -z --index-info`` lines: set each path, or remove it (mode 0)."""
    recs = []
    for path, e in sorted(ours.items()):
        mode, oid = e if e is not None else ("0", _ZERO)
        recs.append(f"{mode} {oid}\t{path}")
    return _nul(recs)


def _nul(items: list[str]) -> bytes:
    return b"".join(i.encode("utf-8", "surrogateescape") + b"\0" for i in items)


def _remove(top: Path, rel: str) -> None:
    """Remove a file an attempt added, and the directories it leaves empty."""
    path = top / rel
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    parent = path.parent
    while parent != top and top in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def enable_publish(
    flags: dict[str, Any],
    registry: Any,
    tracker: ChangeTracker,
    graph: Any,
    workers: int,
    *,
    push_remote: str = "",
    inputs: tuple[Path, ...] = (),
) -> tuple[GitPublisher, int]:
    """Make a run publish through the ``gitops`` gate: refuse a dirty work
    tree (unless ``flags["allow_dirty"]``), register the gate, record it in
    the run's flags (``publish_gate``, ``gates``), and run one unit at a
    time when some unit does not declare its writes (two such units in one
    work tree cannot be told apart). Returns the publisher and the workers."""
    import logging

    publisher = GitPublisher(tracker.tree, tracker, push_remote=push_remote)
    publisher.refuse_dirty(flags.get("allow_dirty") is True, inputs=inputs)
    registry.register(publisher)
    flags["gates"] = {**flags.get("gates", {}), GATE_ID: GATE_TYPE}
    flags["publish_gate"] = GATE_ID
    undeclared = [n.id for n in graph.nodes if n.command is not None and not n.writes]
    if workers > 1 and undeclared:
        flags["gitops_workers"] = (
            f"1 (was {workers}): {len(undeclared)} unit(s) declare no writes, e.g. {undeclared[0]}; "
            "their files could not be told apart in one work tree"
        )
        logging.getLogger("uok.gitops").warning("--gitops commit: workers %s", flags["gitops_workers"])
        workers = 1
    return publisher, workers
