"""Secret detection and redaction, in-process, with ``detect-secrets``.

Two uses:

* :func:`uok.adapters.secretscan.scan_files` is the security gate's scanner
  (its own module, on the detector set up here): it finds secrets in
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
from functools import partial
from typing import Any

from uok.adapters.redactscan import Probe, WholeText, plugin_secrets, sub_lines, windows
from uok.adapters.regexneeds import Requirement, anchor, context_free, requirements
from uok.domain.errors import InputError, RuntimeFailure

LOCK = threading.RLock()
_configured = False
_EXCLUDED_PLUGINS = {"IPPublicDetector"}
_ENTROPY_TYPES = {"Base64 High Entropy String", "Hex High Entropy String"}
_MIN_SECRET = 6  # shorter matches (a 2-char "hex string") are noise, not secrets

PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK|)-----.*?(?:-----END \1PRIVATE KEY\2-----|\Z)", re.S
)
PRIVATE_KEY_HEADER = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY( BLOCK|)-----")
AWS_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
# the body of a private key whose BEGIN line was cut off: base64 lines up to its END line
PRIVATE_KEY_TAIL = re.compile(
    r"(?:(?<=\n)|\A)[ \t]*(?:[A-Za-z0-9+/=]+\r?\n)*[A-Za-z0-9+/=]*\r?\n?-----END ([A-Z0-9 ]*)PRIVATE KEY( BLOCK|)-----"
)
# PEM-like body lines without any armour: two or more lines of 40+ base64 characters, mixed case and digits
# possessive (``{40,}+``, ``*+``): what follows a run (``=``, a blank, a line end) is never one of its
# characters, so giving one back cannot help; it only made every base64-looking line backtrack
_BASE64_LINE = r"(?=[^\n]*[a-z])(?=[^\n]*[A-Z])(?=[^\n]*[0-9])[A-Za-z0-9+/]{40,}+={0,2}+"
KEY_BODY = re.compile(rf"(?m)^[ \t]*+{_BASE64_LINE}[ \t]*+\r?\n(?:[ \t]*+{_BASE64_LINE}[ \t]*+(?:\r?\n|\Z))+")
API_TOKEN = re.compile(
    r"\b(?:sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{20,}|github_pat_[A-Za-z0-9_]{22,}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|glpat-[A-Za-z0-9_-]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}|hf_[A-Za-z0-9]{30,}"
    r"|npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,}|sk_live_[A-Za-z0-9]{20,}|rk_live_[A-Za-z0-9]{20,})"
)
_STRICT = (
    ("Private Key", PRIVATE_KEY_BLOCK),
    ("Private Key", PRIVATE_KEY_TAIL),
    ("Private Key", KEY_BODY),
    ("AWS Access Key", AWS_ACCESS_KEY),
    ("JSON Web Token", JWT),
    ("API Token", API_TOKEN),
)

# ``KEY=value`` / ``KEY: value`` whose key names a secret, quoted or not
# (``export AWS_SECRET_ACCESS_KEY=…``, ``aws_secret_access_key = …`` of a
# credentials file, ``token: …``, ``"client_secret": "…"``); counts such as
# ``input_tokens`` are not secrets, nor are references (``$TOKEN``, ``<token>``).
SECRET_ASSIGNMENT = re.compile(
    r"""(?ix)
    (?<![\w-])[\w.-]*?
    (?:secret|token(?!s)|passw(?:or)?d|passphrase|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?key
      |credentials?|session[_-]?key|signing[_-]?key|encryption[_-]?key|master[_-]?key)
    [\w.-]*["']?[ \t]*(?::|=|=>)[ \t]*["']?
    (?P<value>(?!\$|<|\[REDACTED|\*{3}|[0-9a-f]{16}\]|\d+(?![^\s"',;}\]]))[^\s"',;}\]]{6,})
    """
)
AUTHORIZATION = re.compile(
    r"(?i)(?:\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest|apikey|sso-key)[ \t]+)?"
    r"|\bbearer[ \t]+)(?P<value>(?!\[REDACTED|[0-9a-f]{16}\])[^\s\"',;]{8,})"
)
_VALUED = (("Secret Keyword", SECRET_ASSIGNMENT), ("Authorization", AUTHORIZATION))

# lines worth handing to detect-secrets' plugins (which cost ~0.3 ms a line)
_CANDIDATE = re.compile(
    r"(?i)key|secret|token|passw|pwd|auth|bearer|credential|private|contrase|://[^/\s]+:[^@\s]+@"
    r"|[A-Za-z0-9+/=_-]{20,}"
)
_WINDOW = 4096  # long lines are scanned in windows of this many characters
_OVERLAP = 512  # ... overlapping by this much, so a secret on a window's edge is seen whole


_prepared: dict[str, Any] = {}


def _strict() -> list[tuple[str, WholeText]]:
    if "strict" not in _prepared:
        # a key body's first line starts with 40 base64 characters (after blanks): looked for from each line end
        starts = {KEY_BODY: re.compile(r"\n(?=[ \t]*+[A-Za-z0-9+/]{40})")}
        _prepared["strict"] = [(kind, WholeText(p, starts.get(p))) for kind, p in _STRICT]
    return _prepared["strict"]


def _valued() -> list[tuple[str, re.Pattern[str], list[Requirement]]]:
    if "valued" not in _prepared:
        _prepared["valued"] = [(kind, p, requirements(p)) for kind, p in _VALUED]
    return _prepared["valued"]


def _probes() -> list[Probe]:
    """detect-secrets' line plugins as probes (uok.adapters.redactscan), in
    plugin order: each regex of a regex plugin (matched as :func:`candidates`
    does), each other plugin whole, needing what one of the patterns of its
    module needs (KeywordDetector: one of its secret-naming words; a plugin
    with a pattern that needs no literal text runs on every line)."""
    if "probes" in _prepared:
        return _prepared["probes"]
    import sys

    from detect_secrets.plugins.base import RegexBasedDetector

    probes = []
    for rank, plugin in enumerate(line_plugins()):
        kind = plugin.secret_type
        if isinstance(plugin, RegexBasedDetector):
            for regex in plugin.denylist:
                find = partial(_regex_candidates, regex)
                blind = context_free(regex)
                probes.append(
                    Probe(
                        kind,
                        rank,
                        requirements(regex),
                        find,
                        regex,
                        _match_value,
                        blind,
                        anchor(regex) if blind else None,
                    )
                )
            continue
        module = vars(sys.modules[type(plugin).__module__]).values()
        firsts = [requirements(v)[:1] for v in module if isinstance(v, re.Pattern)]
        needs = [Requirement(s for first in firsts for s in first[0].strings)] if all(firsts) and firsts else []
        probes.append(Probe(kind, rank, needs, partial(_line_candidates, plugin, _line_arguments(plugin))))
    _prepared["probes"] = probes
    return probes


def _regex_candidates(regex: re.Pattern[str], line: str):
    for m in regex.finditer(line):
        yield _match_value(m)


def _match_value(m: re.Match[str]) -> str:
    """The whole match, or its longest group when that is the secret inside some context."""
    groups = [g for g in m.groups() if g]
    best = max(groups, key=len) if groups else ""
    return best if len(best) >= _MIN_SECRET else m.group(0)


def _keep(value: object) -> bool:
    return isinstance(value, str) and len(value) >= _MIN_SECRET and "REDACTED:" not in value


class ScannerUnavailable(RuntimeFailure, RuntimeError):
    """detect-secrets cannot be imported or configured here."""


def secret_fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def detector():
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


def line_plugins():
    from detect_secrets.settings import get_plugins

    return [p for p in get_plugins() if p.secret_type not in _ENTROPY_TYPES]


def candidates(plugin, line: str):
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
            yield from _regex_candidates(regex, line)
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


def _line_arguments(plugin) -> dict[str, Any]:
    """The keyword arguments ``call_function_with_arguments`` would pass the
    plugin's ``analyze_line`` (those it names), worked out once."""
    from detect_secrets.util.inject import make_function_self_aware

    given = {"filename": "adhoc-string-scan", "line_number": 0, "context": None, "enable_eager_search": True}
    names = make_function_self_aware(plugin.analyze_line).injectable_variables
    return {k: v for k, v in given.items() if k in names}


def _line_candidates(plugin, arguments: dict[str, Any], line: str):
    """:func:`candidates` of a plugin that is not regex-based, its arguments known."""
    for f in plugin.analyze_line(line=line, **arguments):
        yield f.secret_value


def _mark(kind: str, secret: str) -> str:
    return f"[REDACTED:{kind}:{secret_fingerprint(secret)}]"


def redact(text: str) -> str:
    """``text`` with every detected secret replaced by a redaction marker.

    One pass for everything uok stores or prints from outside: the strict
    patterns (private-key blocks, also a body whose ``BEGIN`` line was cut
    off, armour-less key bodies, AWS key ids, JWTs, API tokens of well-known
    shapes), values assigned to a key that names a secret (quoted or not,
    ``=``, ``:``), ``Authorization`` headers and bearer tokens, then
    detect-secrets' line plugins on every line that could hold one (long
    lines in overlapping windows). Call it *before* cutting text short: a
    cut secret no longer matches. Never raises: if detect-secrets is
    unavailable the patterns still apply (and only they).

    A pattern or plugin runs only where the literal text it needs is
    (:mod:`uok.adapters.redactscan`: exact, what is skipped could not match)."""
    if not text:
        return text
    for kind, whole in _strict():  # none runs on text without its literals (PRIVATE_KEY_TAIL: quadratic then)

        def marked(m: re.Match[str], kind: str = kind) -> str:
            return _mark(kind, m.group(0))

        text = whole.sub(marked, text)
    for kind, pattern, needs in _valued():

        def valued(m: re.Match[str], kind: str = kind) -> str:
            start, end = m.span("value")
            whole = m.group(0)
            base = m.start()
            return whole[: start - base] + _mark(kind, m.group("value")) + whole[end - base :]

        text = sub_lines(pattern, needs, valued, text)  # their matches stay within a line
    if not _CANDIDATE.search(text):
        # The plugins scan only lines _CANDIDATE accepts, and it has no anchor or
        # lookaround: no match in the whole text is no match in any line. Such text
        # (most plans, most task output) never imports detect-secrets (~0.13 s CPU).
        return text
    try:
        with LOCK:
            detector()
            secrets = plugin_secrets(
                text, _probes(), candidate=_CANDIDATE.search, keep=_keep, window=_WINDOW, overlap=_OVERLAP
            )
    except Exception:  # redaction must never be why a result is lost  # noqa: BLE001
        return text
    for value in sorted(secrets, key=len, reverse=True):
        text = text.replace(value, _mark(secrets[value], value))
    return text


def _windows(line: str):
    return windows(line, _WINDOW, _OVERLAP)


def redact_data(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


class UnredactablePlan(InputError):
    """A plan whose secrets cannot be redacted without breaking it."""


def redact_plan(source: str, files: dict[str, str], *, filename: str, globs: Any = None) -> tuple[str, dict[str, str]]:
    """The plan's source and task files as the log records them: redacted.

    A task's ``env`` values and commands may hold secrets; the log keeps the
    plan redacted while the run executes the plan as written (the runner
    and the gate host take units from the graph compiled from the file).
    The redacted plan must still compile to the same units, else the run is
    refused: a secret is never recorded to keep a plan whole."""
    from uok.domain.plan import PlanError, compile_plan

    red_source = redact(source)
    red_files = {k: redact(v) for k, v in files.items()}
    if red_source == source and red_files == files:
        return source, files
    try:
        before = compile_plan(source, filename=filename, files=files, globs=globs)
        after = compile_plan(red_source, filename=filename, files=red_files, globs=globs)
    except PlanError as exc:
        raise UnredactablePlan(
            f"{filename}: holds a secret uok cannot redact without breaking the plan ({exc}); "
            "pass it through the environment instead"
        ) from None
    if [n.id for n in before.nodes] != [n.id for n in after.nodes]:
        raise UnredactablePlan(f"{filename}: a unit id looks like a secret; rename it")
    return red_source, red_files
