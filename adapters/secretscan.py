"""Scanning files for secrets: what the security gate and ``uok publish`` run.

A text file is scanned line by line by detect-secrets' plugins and uok's
strict patterns (:mod:`uok.adapters.secrets`); a binary one through its
printable strings. What could not be scanned (too large, unreadable, not a
regular file, a symbolic link) is reported, never passed over: the gate
fails closed on it. Redacting text is :func:`uok.adapters.secrets.redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from uok.adapters.secrets import (
    AWS_ACCESS_KEY,
    LOCK,
    PRIVATE_KEY_HEADER,
    candidates,
    detector,
    line_plugins,
    secret_fingerprint,
)
from uok.domain.events import Finding

__all__ = ["MAX_FILE_BYTES", "ScanReport", "scan_files", "scan_paths"]

MAX_FILE_BYTES = 5 * 1024 * 1024


class ScanReport(NamedTuple):
    """What a scan found and what it could not read.

    ``unscannable``: (path, why) for files that exist but were not scanned
    (too large, unreadable, not a regular file): the gate never passes
    them (``[uok.security_guard] unscannable``); ``missing``: paths that do
    not exist (a declared write the task did not make)."""

    findings: list[Finding]
    scanned: list[str]
    unscannable: list[tuple[str, str]]
    missing: list[str]

    @property
    def notes(self) -> list[str]:
        return [f"{rel}: not found" for rel in self.missing] + [f"{rel}: {why}" for rel, why in self.unscannable]


def scan_files(root: Path, paths: Iterable[str]) -> tuple[list[Finding], list[str]]:
    """Scan files (relative to ``root``) for secrets: (findings, notes), a
    note for each path that was not scanned. See :func:`scan_paths`."""
    report = scan_paths(root, paths)
    return report.findings, report.notes


def scan_paths(root: Path, paths: Iterable[str], *, max_bytes: int = MAX_FILE_BYTES) -> ScanReport:
    """Scan files (relative to ``root``, or absolute) for secrets.

    A text file is scanned line by line by detect-secrets and the strict
    patterns; a binary file (a NUL byte in its first 8 KiB) through its
    printable strings (runs of 8 or more), so a key inside an archive or an
    object file is still found (reported at line 0). Raises
    :class:`ScannerUnavailable` when detect-secrets cannot run at all."""
    report = ScanReport([], [], [], [])
    with LOCK:
        scan = detector()
        for rel in dict.fromkeys(paths):
            path = (root / rel) if not Path(rel).is_absolute() else Path(rel)
            try:
                st = path.lstat()
            except FileNotFoundError:
                report.missing.append(rel)
                continue
            except OSError as exc:
                report.unscannable.append((rel, f"cannot stat: {exc.strerror or exc}"))
                continue
            if path.is_symlink():
                report.unscannable.append((rel, f"a symbolic link to {os.readlink(path)!r}, not followed"))
                continue
            if not path.is_file():
                report.unscannable.append((rel, "not a regular file"))
                continue
            if st.st_size > max_bytes:
                report.unscannable.append((rel, f"{st.st_size} bytes, larger than the scan limit of {max_bytes}"))
                continue
            try:
                data = path.read_bytes()
            except OSError as exc:
                report.unscannable.append((rel, f"unreadable: {exc.strerror or exc}"))
                continue
            binary = b"\0" in data[:8192]
            report.findings.extend(_scan_binary(data, rel) if binary else _scan_text_file(scan, path, rel, data))
            report.scanned.append(rel)
    report.findings.sort(key=lambda f: (f.file, f.line, f.kind))
    return report


def _finding(rel: str, line: int, kind: str, fp: str) -> Finding:
    where = f"{rel}:{line}" if line else rel
    return Finding(file=rel, line=line, kind=kind, fingerprint=fp, message=f"{kind} at {where}")


def _scan_text_file(scan, path: Path, rel: str, data: bytes) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[int, str, str]] = set()
    for s in scan.scan_file(str(path)):
        key = (s.line_number, s.type, secret_fingerprint(s.secret_value or ""))
        if key not in seen:
            seen.add(key)
            out.append(_finding(rel, s.line_number, s.type, key[2]))
    text = data.decode("utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        out.extend(_strict_line_findings(line, lineno, rel, seen))
    return out


_PRINTABLE = re.compile(rb"[\t\x20-\x7e]{8,}")


def _scan_binary(data: bytes, rel: str) -> list[Finding]:
    """A binary file's printable strings, each scanned as a line by the
    pattern plugins (the entropy and keyword ones see noise in binaries)."""
    from detect_secrets.plugins.base import RegexBasedDetector

    plugins = [p for p in line_plugins() if isinstance(p, RegexBasedDetector)]
    out: list[Finding] = []
    seen: set[tuple[int, str, str]] = set()
    for m in _PRINTABLE.finditer(data):
        line = m.group(0).decode("ascii")
        for plugin in plugins:
            for value in candidates(plugin, line):
                key = (0, plugin.secret_type, secret_fingerprint(value))
                if key not in seen:
                    seen.add(key)
                    out.append(_finding(rel, 0, plugin.secret_type, key[2]))
        out.extend(_strict_line_findings(line, 0, rel, seen))
    return out


def _strict_line_findings(line: str, lineno: int, rel: str, seen: set[tuple[int, str, str]]) -> list[Finding]:
    """Keys detect-secrets' context rules might let through (AWS key ids, private keys)."""
    out = []
    for kind, pattern in (("AWS Access Key", AWS_ACCESS_KEY), ("Private Key", PRIVATE_KEY_HEADER)):
        for m in pattern.finditer(line):
            fp = secret_fingerprint(m.group(0))
            if any(k[0] == lineno and k[2] == fp for k in seen) or (lineno, kind, fp) in seen:
                continue
            seen.add((lineno, kind, fp))
            out.append(_finding(rel, lineno, kind, fp))
    return out
