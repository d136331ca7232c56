"""The redaction pass as it was before its shortcuts (uok.adapters.redactscan):
every pattern over the whole text, every plugin on every candidate line.

The oracle of tests/integration/test_redaction_fast.py and the baseline of
bench/redaction.py: :func:`uok.adapters.secrets.redact` must return exactly
what this returns, on any text.
"""

from __future__ import annotations

import re

from uok.adapters import secrets as s

_NEEDS = {s.PRIVATE_KEY_BLOCK: "-----BEGIN ", s.PRIVATE_KEY_TAIL: "-----END "}  # as before: quadratic without


def plugin_secrets(text: str) -> dict[str, str]:
    """Secret value -> type: detect-secrets' line plugins on every candidate line, window by window."""
    with s.LOCK:
        s.detector()
        plugins = s.line_plugins()
        found: dict[str, str] = {}
        for line in text.splitlines():
            if not s._CANDIDATE.search(line):
                continue
            for part in s._windows(line):
                for plugin in plugins:
                    for value in s.candidates(plugin, part):
                        if isinstance(value, str) and len(value) >= s._MIN_SECRET and "REDACTED:" not in value:
                            found.setdefault(value, plugin.secret_type)
    return found


def redact(text: str) -> str:
    if not text:
        return text
    for kind, pattern in s._STRICT:
        needs = _NEEDS.get(pattern)
        if needs is not None and needs not in text:
            continue

        def marked(m: re.Match[str], kind: str = kind) -> str:
            return s._mark(kind, m.group(0))

        text = pattern.sub(marked, text)
    for kind, pattern in s._VALUED:

        def valued(m: re.Match[str], kind: str = kind) -> str:
            start, end = m.span("value")
            whole, base = m.group(0), m.start()
            return whole[: start - base] + s._mark(kind, m.group("value")) + whole[end - base :]

        text = pattern.sub(valued, text)
    found = plugin_secrets(text)
    for value in sorted(found, key=len, reverse=True):
        text = text.replace(value, s._mark(found[value], value))
    return text
