"""The ``security`` gate: no secrets in what a unit wrote (behaviour §10).

It scans, in-process with detect-secrets (``adapters/secrets.py``), the
files the task declares in ``writes`` (relative to the plan root) plus any
files the gate's config lists (``[uok.security_guard] files``,
``[uok.gate.security] files`` or the inline table's ``files``).

* secrets found → ``fail``, failure class ``policy`` (no retry: running the
  same work again will not remove a committed secret); each finding records
  file, line, secret type and a fingerprint (sha256, truncated), never the
  secret's text;
* nothing found → ``pass``;
* the scanner cannot run (detect-secrets missing, or the scan exceeding its
  timeout, default 30 s) → ``skip`` with the reason: recorded, never a
  silent pass;
* nothing to scan (no writes, no files) → ``skip``.
"""

from __future__ import annotations

from pathlib import Path

from uok.adapters.gates.deadline import call_with_deadline
from uok.adapters.secrets import ScannerUnavailable, scan_files
from uok.domain.events import Finding
from uok.domain.policies.gates import GateContext, GateResult

DEFAULT_TIMEOUT = 30.0


class SecurityGate:
    def __init__(
        self, gate_id: str = "security", *, timeout_seconds: float = DEFAULT_TIMEOUT, files: tuple[str, ...] = ()
    ):
        self.id = gate_id
        self.type = "security"
        self.timeout_seconds = timeout_seconds
        self.files = files

    def execute(self, context: GateContext, attempt: int) -> GateResult:
        paths = list(dict.fromkeys([*context.writes, *context.files, *self.files]))
        if not paths:
            return GateResult(
                outcome="skip", rationale="nothing to scan: the task declares no writes and no files are configured"
            )
        timeout = context.timeout or self.timeout_seconds
        done = call_with_deadline(
            lambda: scan_files(Path(context.base_path), paths), timeout, name=f"uok-secret-scan-{context.turn_id}"
        )
        if not done.finished:
            return GateResult(
                outcome="skip",
                failure_class="timeout",
                rationale=f"secret scanner did not finish within {timeout:g} s; {len(paths)} file(s) NOT scanned",
            )
        if done.error is not None:  # the scanner could not run or broke: say so, do not pass
            exc = done.error
            why = str(exc) if isinstance(exc, ScannerUnavailable) else f"scanner error: {type(exc).__name__}: {exc}"
            return GateResult(outcome="skip", failure_class="unknown", rationale=f"secret scanner could not run: {why}")
        findings, notes = done.value
        note = f" ({'; '.join(notes)})" if notes else ""
        scanned = len(paths) - len(notes)
        if findings:
            return GateResult(
                outcome="fail", failure_class="policy", findings=tuple(findings), rationale=_summary(findings) + note
            )
        return GateResult(outcome="pass", rationale=f"no secrets in {scanned} scanned file(s){note}")


def _summary(findings: list[Finding]) -> str:
    shown = ", ".join(f"{f.kind} at {f.file}:{f.line}" for f in findings[:5])
    more = f" and {len(findings) - 5} more" if len(findings) > 5 else ""
    return f"{len(findings)} secret(s) found: {shown}{more}"
