"""Exact shortcuts for redaction: skip the text no pattern can match.

Redaction (:func:`uok.adapters.secrets.redact`) runs some fifty regular
expressions: uok's own patterns over the whole text and detect-secrets'
plugins line by line. Run naively, output full of token-like strings
(hashes, base64, ids: every line is a candidate) went at 0.04–0.5 MB/s.

Almost every pattern needs some literal text to match: ``AKIA`` or
``ASIA`` for an AWS key id, ``eyJ`` for a JWT, one of ``secret``,
``token``, ``passw``… (in any case) for a secret assignment. A
:class:`~uok.adapters.regexneeds.Requirement` is such a necessary
condition, read off the pattern's parse tree
(:mod:`uok.adapters.regexneeds`): *every* match contains one of its
strings. So

* a pattern whose requirement is absent from the whole text is not run
  (one ``str.find`` or one literal scan instead of a regex pass);
* a line-by-line pattern runs only on the lines (and windows of long
  lines) that hold its requirements, found from the requirement's
  occurrences in the whole text (:class:`Lines`).

Both are exact: what is skipped could not have matched. Nothing here
decides what is a secret; the patterns and plugins do, on the same
strings as before (tests/integration/test_redaction_fast.py compares
with the line-by-line reference on a corpus of every plugin's shapes).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import NamedTuple

from uok.adapters.regexneeds import Anchor, Requirement, Text, anchor, requirements

# str.splitlines() breaks lines at these (\r\n counts as one break)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def sub_from(pattern: re.Pattern[str], starts: Iterable[int], repl: Callable[[re.Match[str]], str], text: str) -> str:
    """``pattern.sub(repl, text)`` for a pattern whose (non-empty) matches can
    start only at ``starts`` (:func:`matches_at`)."""
    pieces, done = [], 0
    for m in matches_at(pattern, starts, text):
        pieces += [text[done : m.start()], repl(m)]
        done = m.end()
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def matches_at(pattern: re.Pattern[str], starts: Iterable[int], text: str) -> list[re.Match[str]]:
    """What ``pattern.finditer(text)`` yields, for a pattern whose (non-empty)
    matches can start only at ``starts``: tried there in order with
    :meth:`re.Pattern.match` (which sees the text around), skipping those
    inside the last match, as the scan would."""
    out, done = [], 0
    for at in sorted(set(starts)):
        if at < done:
            continue
        m = pattern.match(text, at)
        if m is not None:
            out.append(m)
            done = m.end()
    return out


class WholeText:
    """A pattern applied to the whole text, exactly as ``pattern.sub`` would,
    but only if the text holds its requirements, and tried only where a
    match can start when that is known: after a literal prefix's
    occurrences (:func:`anchor`, if there are few), or at line starts for a pattern that
    begins with ``(?m)^``: after each ``\\n`` that ``line_starts`` matches
    (by default, each one the rest of the pattern matches after; a cheaper
    one may be given: a necessary condition of a match there)."""

    MAX_STARTS = 256  # more occurrences of the prefix than this: one sub is cheaper

    def __init__(self, pattern: re.Pattern[str], line_starts: re.Pattern[str] | None = None):
        self.pattern = pattern
        self.needs = requirements(pattern)
        self.anchor = anchor(pattern)
        self.line_starts = None
        if pattern.pattern.startswith("(?m)^"):
            rest = pattern.pattern[len("(?m)^") :]
            self.line_starts = line_starts or re.compile("\n(?=" + rest + ")", pattern.flags)

    def sub(self, repl: Callable[[re.Match[str]], str], text: str) -> str:
        t = Text(text)
        if not all(r.found_in(t) for r in self.needs):
            return text
        starts = self.anchor.starts(t, self.MAX_STARTS) if self.anchor is not None else None
        if starts is not None:
            return sub_from(self.pattern, starts, repl, text)
        if self.line_starts is not None:
            return sub_from(self.pattern, [0, *(m.start() + 1 for m in self.line_starts.finditer(text))], repl, text)
        return self.pattern.sub(repl, text)


class Lines:
    """The lines of a text as ``str.splitlines()`` cuts them, found by position."""

    def __init__(self, text: Text):
        self.text = text
        whole = text.text
        self.starts = [0, *accumulate(map(len, whole.splitlines(True)))][:-1]
        self.ends = [start + len(line) for start, line in zip(self.starts, whole.splitlines(), strict=True)]

    def __len__(self) -> int:
        return len(self.starts)

    def line(self, i: int) -> str:
        return self.text.text[self.starts[i] : self.ends[i]]

    def holding(self, requirement: Requirement) -> list[int]:
        """Indexes of the lines that contain one of the requirement's strings, in order."""
        starts = self.starts
        found = {bisect_right(starts, p) - 1 for p in requirement.positions(self.text)}
        found.discard(-1)
        return sorted(found)


def sub_lines(
    pattern: re.Pattern[str], needs: list[Requirement], repl: Callable[[re.Match[str]], str], text: str
) -> str:
    """``pattern.sub(repl, text)`` for a pattern whose matches never cross a
    line break and whose lookarounds treat a line break like the text's
    edge: applied only to the lines holding its requirements."""
    if not needs:
        return pattern.sub(repl, text)
    whole = Text(text)
    if not all(r.found_in(whole) for r in needs):
        return text
    lines = Lines(whole)
    pieces, done = [], 0
    for i in lines.holding(needs[0]):
        line = lines.line(i)
        if not all(r.found_in(Text(line)) for r in needs[1:]):
            continue
        new = pattern.sub(repl, line)
        if new != line:
            pieces += [text[done : lines.starts[i]], new]
            done = lines.ends[i]
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


class Probe(NamedTuple):
    """One line-by-line detector: a regex of a plugin, or a whole plugin.

    ``find(part)`` yields the secret values it sees in one line (or window
    of a long line); ``needs`` are necessary for a value to be found there;
    ``rank`` orders the detectors as the line-by-line scan runs them (it
    decides which type a value found by two of them gets). A regex probe
    also has ``regex``, ``value`` (the secret of one of its matches) and
    ``blind``: the regex is :func:`context_free`."""

    kind: str
    rank: int
    needs: list[Requirement]
    find: Callable[[str], Iterable[str]]
    regex: re.Pattern[str] | None = None
    value: Callable[[re.Match[str]], str] | None = None
    blind: bool = False
    anchor: Anchor | None = None


def windows(line: str, size: int, overlap: int) -> Iterator[str]:
    """A line cut in pieces of ``size`` characters overlapping by ``overlap``
    (a secret on a piece's edge is seen whole in the next one)."""
    if len(line) <= size:
        yield line
        return
    for start in range(0, len(line), size - overlap):
        yield line[start : start + size]
        if start + size >= len(line):
            return


_BREAK = re.compile(f"[{LINE_BREAKS}]")


class _Scan:
    """One text's line-by-line scan, probe by probe (:func:`plugin_secrets`)."""

    def __init__(self, text: str, candidate: Callable[[str], object], keep: Callable[[str], bool], window: int):
        self.whole = Text(text)
        self.candidate, self.keep, self.window = candidate, keep, window
        self._lines: Lines | None = None
        self.accepted: dict[int, bool] = {}
        self.found: dict[str, tuple[tuple[int, int, int], str]] = {}

    @property
    def lines(self) -> Lines:
        if self._lines is None:
            self._lines = Lines(self.whole)
        return self._lines

    def accepts(self, i: int) -> bool:
        ok = self.accepted.get(i)
        if ok is None:
            ok = self.accepted[i] = bool(self.candidate(self.lines.line(i)))
        return ok

    def record(self, value: str, key: tuple[int, int, int], kind: str) -> None:
        if self.keep(value) and (value not in self.found or key < self.found[value][0]):
            self.found[value] = (key, kind)

    def probe(self, probe: Probe, overlap: int) -> None:
        needs = probe.needs
        if not all(r.found_in(self.whole) for r in needs):
            return
        rows: Iterable[int] | None = None
        if probe.blind and probe.regex is not None and probe.value is not None:
            text = self.whole.text
            starts = probe.anchor.starts(self.whole, len(text) // 32) if probe.anchor is not None else None
            matches = list(probe.regex.finditer(text)) if starts is None else matches_at(probe.regex, starts, text)
            if not matches:
                return  # context-free: no match in the whole text, none in any line
            if not any(_BREAK.search(m.group()) for m in matches):
                rows = self._whole_text_matches(probe, matches)
        lines = self.lines
        if rows is None:
            rows = lines.holding(needs[0]) if needs else range(len(lines))
        for i in rows:
            if not self.accepts(i):
                continue
            for w, part in enumerate(windows(lines.line(i), self.window, overlap)):
                if all(r.found_in(Text(part)) for r in needs):
                    for value in probe.find(part):
                        self.record(value, (i, w, probe.rank), probe.kind)

    def _whole_text_matches(self, probe: Probe, matches: list[re.Match[str]]) -> list[int]:
        """A context-free regex none of whose matches in the whole text holds a
        line break finds in each line exactly the matches of the whole text
        that lie in it (the scan reaches the line's start as a scan of the
        line alone would begin, and sees nothing past what it matches).
        Recorded here for short lines; returns the long lines, which are
        scanned window by window."""
        assert probe.value is not None
        lines, long_lines = self.lines, set()
        starts, ends = lines.starts, lines.ends
        for m in matches:
            i = bisect_right(starts, m.start()) - 1
            if ends[i] - starts[i] > self.window:
                long_lines.add(i)
            elif self.accepts(i):
                self.record(probe.value(m), (i, 0, probe.rank), probe.kind)
        needs = probe.needs
        held = lines.holding(needs[0]) if needs else range(len(lines))
        return sorted(long_lines | {i for i in held if ends[i] - starts[i] > self.window})


def plugin_secrets(
    text: str,
    probes: Iterable[Probe],
    *,
    candidate: Callable[[str], object],
    keep: Callable[[str], bool],
    window: int,
    overlap: int,
) -> dict[str, str]:
    """Secret value -> type, exactly as scanning every line of ``text`` (that
    ``candidate`` accepts) window by window (:func:`windows`) with every
    probe, in rank order, would find them: the first (line, window, probe)
    to see a value names its type. Only the lines and windows that hold a
    probe's needs are scanned by it; a context-free regex is run over the
    whole text at once."""
    scan = _Scan(text, candidate, keep, window)
    for probe in probes:
        scan.probe(probe, overlap)
    return {value: kind for value, (_, kind) in scan.found.items()}
