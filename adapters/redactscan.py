"""Exact shortcuts for redaction: skip the text no pattern can match.

Redaction (:func:`uok.adapters.secrets.redact`) runs some fifty regular
expressions: uok's own patterns over the whole text and detect-secrets'
plugins line by line. Run naively, output full of token-like strings
(hashes, base64, ids: every line is a candidate) went at 0.04–0.5 MB/s.

Almost every pattern needs some literal text to match: ``AKIA`` or
``ASIA`` for an AWS key id, ``eyJ`` for a JWT, one of ``secret``,
``token``, ``passw``… (in any case) for a secret assignment. A
:class:`Requirement` is such a necessary condition, read off the pattern's
parse tree (:func:`requirements`): *every* match contains one of its
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
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import NamedTuple

_REPEATS = {sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", sre_c.MAX_REPEAT)}
_ZERO_WIDTH = {sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT}
# str.splitlines() breaks lines at these (\r\n counts as one break)
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


# the only characters outside ASCII that re.IGNORECASE matches to an ASCII letter,
# besides those str.lower() maps to it (KELVIN SIGN): İ and ı to i, ſ to s
_FOLD_EXTRA = {0x130: "i", 0x131: "i", 0x17F: "s"}


class Text:
    """A text and, when asked, its case fold: the same length, every
    character that ``re.IGNORECASE`` matches to an ASCII letter lowered to
    it (``str.lower`` plus :data:`_FOLD_EXTRA`)."""

    __slots__ = ("_ascii", "_at", "_folded", "_has", "text")

    def __init__(self, text: str):
        self.text = text
        self._folded: str | None = None
        self._ascii: bool | None = None
        self._has: dict[tuple[str, bool], bool] = {}  # many patterns need the same strings
        self._at: dict[tuple[str, bool], list[int]] = {}

    def has(self, s: str, folded: bool) -> bool:
        """Whether ``s`` is in the text (``folded``: in its fold)."""
        key = (s, folded)
        got = self._has.get(key)
        if got is None:
            got = self._has[key] = s in (self.folded if folded else self.text)
        return got

    def find_all(self, s: str, folded: bool) -> list[int]:
        """Every position where ``s`` starts (overlapping ones too)."""
        key = (s, folded)
        got = self._at.get(key)
        if got is None:
            got = self._at[key] = []
            if self.has(s, folded):
                hay = self.folded if folded else self.text
                at = hay.find(s)
                while at >= 0:
                    got.append(at)
                    at = hay.find(s, at + 1)
        return got

    @property
    def ascii(self) -> bool:
        if self._ascii is None:
            self._ascii = self.text.isascii()
        return self._ascii

    @property
    def folded(self) -> str:
        if self._folded is None:
            text = self.text
            if not self.ascii and any(chr(c) in text for c in _FOLD_EXTRA):
                text = text.translate(_FOLD_EXTRA)  # İ lowers to two characters: never let it
            self._folded = text.lower()
        return self._folded


def _matches_ascii(literal: str) -> bool:
    """Whether ``literal`` (matched ignoring case) can match ASCII text at all."""
    return all(c.isascii() or ord(c) in _FOLD_EXTRA or c.lower().isascii() for c in literal)


class Requirement:
    """Every match of a pattern contains at least one of ``strings``, each
    matched case-sensitively or not (``icase``) as the pattern does.

    Looked for with ``str.find``: a string matched ignoring case is found
    in the text's fold (:class:`Text`), which holds it lowered wherever the
    pattern's engine would match it (an ASCII string; one with other
    letters, rare, is looked for with the engine itself)."""

    __slots__ = ("_rare", "exact", "folded", "shortest", "strings")

    def __init__(self, strings: Iterable[tuple[str, bool]]):
        self.strings = frozenset(strings)
        self.exact = tuple(sorted(s for s, icase in self.strings if not icase))
        self.folded = tuple(sorted({s.lower() for s, icase in self.strings if icase and s.isascii()}))
        rare = sorted(s for s, icase in self.strings if icase and not s.isascii())
        self._rare = (
            (re.compile("|".join(map(re.escape, rare)), re.IGNORECASE), any(map(_matches_ascii, rare)))
            if rare
            else None
        )
        self.shortest = min((len(s) for s, _ in self.strings), default=0)

    def __repr__(self) -> str:
        return f"Requirement({sorted(self.strings)!r})"

    def _rare_applies(self, text: Text) -> re.Pattern[str] | None:
        if self._rare is None:
            return None
        regex, on_ascii = self._rare
        return regex if on_ascii or not text.ascii else None

    def found_in(self, text: Text) -> bool:
        if any(text.has(s, False) for s in self.exact):
            return True
        if any(text.has(s, True) for s in self.folded):
            return True
        rare = self._rare_applies(text)
        return rare is not None and rare.search(text.text) is not None

    def positions(self, text: Text) -> Iterator[int]:
        """Every position where one of its strings starts in ``text`` (not
        ordered, maybe repeated)."""
        for s in self.exact:
            yield from text.find_all(s, False)
        for s in self.folded:
            yield from text.find_all(s, True)
        rare = self._rare_applies(text)
        if rare is not None:  # every start, overlapping ones too (not finditer's)
            m = rare.search(text.text)
            while m is not None:
                yield m.start()
                m = rare.search(text.text, m.start() + 1)


def requirements(pattern: re.Pattern[str]) -> list[Requirement]:
    """Necessary literal conditions of ``pattern``, the most selective first
    (longest shortest string); empty if it needs no literal text."""
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    icase = bool(parsed.state.flags & re.IGNORECASE)
    found = [Requirement(r) for r in _sequence(list(parsed), icase) if r]
    return sorted(found, key=lambda r: -r.shortest)


def prefix(pattern: re.Pattern[str]) -> Requirement | None:
    """The strings every match of ``pattern`` starts with (after anchors and
    lookarounds, which :meth:`re.Pattern.match` still checks in context),
    or None if there is no such literal start."""
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    found = _prefix(list(parsed), bool(parsed.state.flags & re.IGNORECASE))
    return Requirement(found) if found else None


def _pure(items: list) -> str | None:
    return "".join(chr(av) for _, av in items) if all(op is sre_c.LITERAL for op, _ in items) else None


def _prefix(items: list, icase: bool) -> set[tuple[str, bool]] | None:
    heads = [""]
    for op, av in items:
        if op is sre_c.LITERAL:
            heads = [h + chr(av) for h in heads]
            continue
        if op in _ZERO_WIDTH and heads == [""]:
            continue  # checked in place by match(): the match starts after it
        if op is sre_c.BRANCH or op is sre_c.IN:
            alts = [list(a) for a in av[1]] if op is sre_c.BRANCH else [[x] for x in av]
            tails = [_pure(a) for a in alts]
            if all(tails) and len(heads) * len(tails) <= 64:  # a choice of plain strings: each continues it
                heads = [h + t for h in heads for t in tails if t]
                continue
            if heads != [""] or op is sre_c.IN:
                break
            firsts = [_prefix(a, icase) for a in alts]
            return set().union(*firsts) if all(firsts) else None  # type: ignore[arg-type]
        if heads != [""]:
            break
        if op is sre_c.SUBPATTERN:
            _group, add, delete, sub = av
            inner = (icase or bool(add & re.IGNORECASE)) and not (delete & re.IGNORECASE)
            return _prefix(list(sub), inner)
        if op in _REPEATS and av[0] >= 1:
            return _prefix(list(av[2]), icase)
        return None
    return {(h, icase) for h in heads} if heads != [""] else None


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


class Anchor(NamedTuple):
    """Every match of a pattern holds one of ``strings`` starting ``lo`` to
    ``hi`` characters after the match's start: matches can start only there."""

    strings: Requirement
    lo: int
    hi: int

    def starts(self, text: Text, limit: int) -> list[int] | None:
        """Where matches can start (not ordered), or None past ``limit``."""
        out: list[int] = []
        for at in self.strings.positions(text):
            out.extend(range(max(0, at - self.hi), max(0, at - self.lo + 1)))
            if len(out) > limit:
                return None
        return out


def anchor(pattern: re.Pattern[str]) -> Anchor | None:
    """Its literal start (:func:`prefix`), else the first literal text of its
    top-level sequence that sits a bounded distance (at most 64 characters)
    from the match's start (``\\d{8,10}:`` -> ``:`` 8 to 10 characters in)."""
    start = prefix(pattern)
    if start is not None:
        return Anchor(start, 0, 0) if _selective(start) else None
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    icase = bool(parsed.state.flags & re.IGNORECASE)
    items = list(parsed)
    for k, (op, _av) in enumerate(items):
        if op is not sre_c.LITERAL:
            continue
        lo, hi = sre_parse.SubPattern(parsed.state, items[:k]).getwidth()
        if hi > 64:
            return None
        run = []
        for op2, av2 in items[k:]:
            if op2 is not sre_c.LITERAL:
                break
            run.append(chr(av2))
        found = Requirement([("".join(run), icase)])
        return Anchor(found, lo, hi) if _selective(found) else None
    return None


def _selective(strings: Requirement) -> bool:
    """Not a single letter or digit: those are everywhere in token-like text."""
    return all(len(s) > 1 or not s.isalnum() for s, _ in strings.strings)


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


def context_free(pattern: re.Pattern[str]) -> bool:
    """No anchor, word boundary or lookaround: whether it matches a piece of
    text depends on that piece only, so a match in a line is a match
    somewhere in any text holding the line (a search of the whole text
    that finds nothing rules out every line)."""
    return not _has_context(list(sre_parse.parse(pattern.pattern, pattern.flags)))


def _has_context(items: list) -> bool:
    for op, av in items:
        if op in _ZERO_WIDTH or op in (sre_c.GROUPREF_EXISTS,):
            return True
        for sub in _children(op, av):
            if _has_context(sub):
                return True
    return False


def _children(op, av) -> list[list]:
    if op is sre_c.SUBPATTERN:
        return [list(av[-1])]
    if op in _REPEATS:
        return [list(av[2])]
    if op is sre_c.BRANCH:
        return [list(alt) for alt in av[1]]
    if op is getattr(sre_c, "ATOMIC_GROUP", None):
        return [list(av)]
    return []


def _sequence(items: list, icase: bool) -> list[set[tuple[str, bool]]]:
    """Necessary conditions of a sequence: each a set of alternative strings."""
    out: list[set[tuple[str, bool]]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            out.append({("".join(run), icase)})
            run.clear()

    for op, av in items:
        if op is sre_c.LITERAL:
            run.append(chr(av))
        elif op is sre_c.SUBPATTERN:
            _group, add, delete, sub = av
            inner = (icase or bool(add & re.IGNORECASE)) and not (delete & re.IGNORECASE)
            sub = list(sub)
            if inner == icase and all(o is sre_c.LITERAL for o, _ in sub):
                run.extend(chr(a) for _, a in sub)  # a group of plain text: part of the run
            else:
                flush()
                out.extend(_sequence(sub, inner))
        elif op is sre_c.BRANCH:
            flush()
            alternatives = [_best(_sequence(list(alt), icase)) for alt in av[1]]
            if all(alternatives):
                out.append(set().union(*alternatives))
        elif op in _REPEATS and av[0] >= 1:
            flush()
            out.extend(_sequence(list(av[2]), icase))  # at least once: what it needs is needed
        else:
            flush()  # a class, a repeat that may match nothing, an anchor, a lookaround: no literal here
    flush()
    return out


def _best(conditions: list[set[tuple[str, bool]]]) -> set[tuple[str, bool]]:
    """The most selective condition (for one alternative of a branch)."""
    if not conditions:
        return set()
    return max(conditions, key=lambda c: min(len(s) for s, _ in c))


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
