"""Secret detection and redaction, in-process, with ``detect-secrets``.

Two uses:

* :func:`scan_files` is the security gate's scanner: it finds secrets in
  the files a unit wrote and reports each as a :class:`Finding` holding the
  file, line, secret type and a *fingerprint* (sha256 of the secret,
  truncated) — never the secret itself, so the event log stays clean.
* :func:`redact` scrubs text that is about to be stored (a task's stdout and
  stderr tails, gate rationales): every detected secret becomes
  ``[REDACTED:<type>:<fingerprint>]``. Besides detect-secrets' line plugins
  it applies strict patterns for whole private-key blocks and AWS access
  key ids, which must go even when they span lines or sit in odd context.

detect-secrets keeps its settings in a process-wide singleton, so all use
goes through one lock; the plugin set is configured once (every plugin but
public-IP detection, which is not a secret). The entropy plugins are used
for files (with detect-secrets' own false-positive filters) but not for
redaction: on free text their eager mode flags ordinary words.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from pathlib import Path

from uok.domain.errors import RuntimeFailure
from uok.domain.events import Finding

MAX_FILE_BYTES = 5 * 1024 * 1024
_LOCK = threading.RLock()
_configured = False
_EXCLUDED_PLUGINS = {"IPPublicDetector"}
_ENTROPY_TYPES = {"Base64 High Entropy String", "Hex High Entropy String"}
_MIN_SECRET = 6  # shorter matches (a 2-char "hex string") are noise, not secrets

PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK|)-----.*?(?:-----END \1PRIVATE KEY\2-----|\Z)", re.S
)
AWS_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_STRICT = (("Private Key", PRIVATE_KEY_BLOCK), ("AWS Access Key", AWS_ACCESS_KEY), ("JSON Web Token", JWT))


class ScannerUnavailable(RuntimeFailure, RuntimeError):
    """detect-secrets cannot be imported or configured here."""


def secret_fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _setup():
    """Import and configure detect-secrets once; returns its scan module."""
    global _configured
    try:
        from detect_secrets.core import scan
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.settings import configure_settings_from_baseline
    except ImportError as exc:
        raise ScannerUnavailable(f"detect-secrets is not importable: {exc}") from None
    if not _configured:
        plugins = [
            {"name": cls.__name__}
            for cls in get_mapping_from_secret_type_to_class().values()
            if cls.__name__ not in _EXCLUDED_PLUGINS
        ]
        configure_settings_from_baseline({"plugins_used": plugins})
        _configured = True
    return scan


def _line_plugins():
    from detect_secrets.settings import get_plugins

    return [p for p in get_plugins() if p.secret_type not in _ENTROPY_TYPES]


def _candidates(plugin, line: str):
    """Secret values one plugin sees in a line.

    Regex plugins are run match by match: their ``analyze_string`` returns
    ``findall`` groups, which for a pattern like ``(ghp|gho)_[A-Za-z0-9]{36}``
    is just the prefix. The whole match (or its longest group, when that is
    the secret inside some context) is what must go.
    """
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.util.inject import call_function_with_arguments

    if isinstance(plugin, RegexBasedDetector):
        for regex in plugin.denylist:
            for m in regex.finditer(line):
                groups = [g for g in m.groups() if g]
                best = max(groups, key=len) if groups else ""
                yield best if len(best) >= _MIN_SECRET else m.group(0)
        return
    found = call_function_with_arguments(
        plugin.analyze_line,
        filename="adhoc-string-scan",
        line=line,
        line_number=0,
        context=None,
        enable_eager_search=True,
    )
    for f in found:
        yield f.secret_value


def scan_files(root: Path, paths: Iterable[str]) -> tuple[list[Finding], list[str]]:
    """Scan files (relative to ``root``) for secrets.

    Returns (findings, notes): a note for each path that was not scanned
    (missing, too large, not a file). Raises :class:`ScannerUnavailable`
    when detect-secrets cannot run at all.
    """
    findings: list[Finding] = []
    notes: list[str] = []
    with _LOCK:
        scan = _setup()
        for rel in dict.fromkeys(paths):
            path = (root / rel) if not Path(rel).is_absolute() else Path(rel)
            if not path.exists():
                notes.append(f"{rel}: not found")
                continue
            if not path.is_file():
                notes.append(f"{rel}: not a regular file")
                continue
            if path.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"{rel}: larger than {MAX_FILE_BYTES} bytes, not scanned")
                continue
            seen: set[tuple[int, str, str]] = set()
            for s in scan.scan_file(str(path)):
                value = s.secret_value or ""
                key = (s.line_number, s.type, secret_fingerprint(value))
                if key in seen:
                    continue
                seen.add(key)
                findings.append(
                    Finding(
                        file=rel,
                        line=s.line_number,
                        kind=s.type,
                        fingerprint=key[2],
                        message=f"{s.type} at {rel}:{s.line_number}",
                    )
                )
            findings.extend(_strict_file_findings(path, rel, seen))
    findings.sort(key=lambda f: (f.file, f.line, f.kind))
    return findings, notes


def _strict_file_findings(path: Path, rel: str, seen: set[tuple[int, str, str]]) -> list[Finding]:
    """AWS keys detect-secrets' context rules might let through."""
    out = []
    text = path.read_text(encoding="utf-8", errors="replace")
    for lineno, line in enumerate(text.splitlines(), 1):
        for m in AWS_ACCESS_KEY.finditer(line):
            fp = secret_fingerprint(m.group(0))
            if any(k[0] == lineno and k[2] == fp for k in seen):
                continue
            seen.add((lineno, "AWS Access Key", fp))
            out.append(
                Finding(
                    file=rel,
                    line=lineno,
                    kind="AWS Access Key",
                    fingerprint=fp,
                    message=f"AWS Access Key at {rel}:{lineno}",
                )
            )
    return out


def _mark(kind: str, secret: str) -> str:
    return f"[REDACTED:{kind}:{secret_fingerprint(secret)}]"


def redact(text: str) -> str:
    """``text`` with every detected secret replaced by a redaction marker.

    Never raises: if detect-secrets is unavailable the strict patterns still
    apply (and only they)."""
    if not text:
        return text
    for kind, pattern in _STRICT:

        def marked(m: re.Match[str], kind: str = kind) -> str:
            return _mark(kind, m.group(0))

        text = pattern.sub(marked, text)
    try:
        with _LOCK:
            _setup()
            plugins = _line_plugins()
            secrets: dict[str, str] = {}
            for line in text.splitlines():
                if not line.strip() or len(line) > 10_000:
                    continue
                for plugin in plugins:
                    for value in _candidates(plugin, line):
                        if isinstance(value, str) and len(value) >= _MIN_SECRET and "REDACTED:" not in value:
                            secrets.setdefault(value, plugin.secret_type)
    except Exception:  # redaction must never be why a result is lost  # noqa: BLE001
        return text
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, _mark(secrets[value], value))
    return text
