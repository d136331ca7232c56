"""The ``security`` gate: no secrets in what a unit changed (behaviour §10).

It scans, in-process with detect-secrets (``adapters/secrets.py``), the
turn's real change set: every file added or modified since the turn
started, declared or not (``adapters/changeset.py``: the git diff of the
work tree, untracked files included; outside git the files whose size or
times changed), plus the files the task declares in ``writes`` and the
files the gate's config lists (``[uok.security_guard] files``,
``[uok.gate.security] files`` or the inline table's ``files``).

* secrets found → ``fail``, failure class ``policy`` (no retry: running the
  same work again will not remove a committed secret); each finding records
  file, line, secret type and a fingerprint (sha256, truncated), never the
  secret's text;
* a changed file it cannot scan (larger than ``max_file_bytes``,
  unreadable, a symbolic link, not a regular file) → ``fail``/``policy``, or
  ``skip`` with ``[uok.security_guard] unscannable = "skip"``: never a pass;
  a binary file is scanned through its printable strings;
* the change set cannot be read, the scanner cannot run (detect-secrets
  missing) or the scan exceeds its timeout (default 30 s) → the same
  ``unscannable`` setting decides (``fail`` by default), with the reason;
* nothing found → ``pass``, naming how many files were scanned;
* nothing to scan (no change, no writes, no files) → ``skip``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from uok.adapters.changeset import ChangeSet, SnapshotError
from uok.adapters.gates.deadline import call_with_deadline
from uok.adapters.secrets import ScannerUnavailable
from uok.adapters.secretscan import MAX_FILE_BYTES, ScanReport, scan_paths
from uok.domain.events import Finding
from uok.domain.policies.gates import GateContext, GateResult

DEFAULT_TIMEOUT = 30.0
Changes = Callable[[str], ChangeSet | None]  # turn id -> its change set (None: no snapshot of it)


class SecurityGate:
    def __init__(
        self,
        gate_id: str = "security",
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT,
        files: tuple[str, ...] = (),
        unscannable: str = "fail",
        max_file_bytes: int = MAX_FILE_BYTES,
        changes: Changes | None = None,
    ):
        self.id = gate_id
        self.type = "security"
        self.timeout_seconds = timeout_seconds
        self.files = files
        self.unscannable = unscannable
        self.max_file_bytes = max_file_bytes
        self.changes = changes  # set by the composition root (uok.bootstrap) to the run's ChangeTracker

    def _not_scanned(self, rationale: str, failure_class: str = "policy") -> GateResult:
        """A scan that could not be done: fail (the default) or skip, never pass."""
        if self.unscannable == "skip":
            return GateResult(outcome="skip", failure_class=failure_class, rationale=rationale)
        return GateResult(outcome="fail", failure_class=failure_class, rationale=rationale)

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        base = Path(context.base_path)
        declared = list(dict.fromkeys([*context.writes, *context.files, *self.files]))
        timeout = context.timeout or self.timeout_seconds

        def work() -> tuple[ScanReport, int, tuple[str, ...]]:
            changes = self.changes(context.turn_id) if self.changes is not None else None
            changed = [_shown(changes.top / p, base) for p in changes.changed] if changes else []
            deleted = changes.deleted if changes else ()
            paths = list(dict.fromkeys([*changed, *declared]))
            return scan_paths(base, paths, max_bytes=self.max_file_bytes), len(changed), deleted

        done = call_with_deadline(work, timeout, name=f"uok-secret-scan-{context.turn_id}")
        if not done.finished:
            return self._not_scanned(
                f"secret scanner did not finish within {timeout:g} s; the change set is NOT scanned", "timeout"
            )
        if done.error is not None:  # the scanner could not run or broke: say so, do not pass
            exc = done.error
            if isinstance(exc, ScannerUnavailable):
                why = str(exc)
            elif isinstance(exc, SnapshotError):
                why = f"the turn's change set cannot be read: {exc}"
            else:
                why = f"scanner error: {type(exc).__name__}: {exc}"
            return self._not_scanned(f"secret scanner could not run: {why}", "unknown")
        report, n_changed, deleted = done.value
        if not report.scanned and not report.unscannable and not report.findings:
            missing = f" ({len(report.missing)} declared file(s) not found)" if report.missing else ""
            return GateResult(outcome="skip", rationale=f"nothing to scan: no file changed{missing}")
        notes = report.notes + ([f"{len(deleted)} deleted"] if deleted else [])
        note = f" ({'; '.join(notes[:10])})" if notes else ""
        if report.findings:
            return GateResult(
                outcome="fail",
                failure_class="policy",
                findings=tuple(report.findings),
                rationale=_summary(report.findings) + note,
            )
        if report.unscannable:
            shown = "; ".join(f"{rel}: {why}" for rel, why in report.unscannable[:5])
            return self._not_scanned(f"{len(report.unscannable)} changed file(s) could not be scanned: {shown}")
        return GateResult(
            outcome="pass",
            rationale=f"no secrets in {len(report.scanned)} scanned file(s), {n_changed} changed in the turn{note}",
        )


def _shown(path: Path, base: Path) -> str:
    """A path as findings show it: relative to the plan's directory when inside it."""
    try:
        return path.relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


def _summary(findings: list[Finding]) -> str:
    shown = ", ".join(f"{f.kind} at {f.file}:{f.line}" for f in findings[:5])
    more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
    return f"{len(findings)} secret(s) found: {shown}{more}"
