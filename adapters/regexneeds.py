"""What a regular expression needs in order to match: the literal text
every match contains, read off its parse tree.

A :class:`Requirement` is a necessary condition of a pattern: *every*
match contains one of its strings (:func:`requirements`); a pattern's
literal start (:func:`prefix`) or a literal at a bounded distance from the
match's start (:func:`anchor`) says where matches can begin; a
:func:`context_free` pattern matches a piece of text whatever surrounds
it. :class:`Text` answers "is this string in the text (or in its case
fold)" once per string for all patterns.

Nothing here matches or decides what is a secret: the redaction shortcuts
(:mod:`uok.adapters.redactscan`) use these conditions to skip text no
pattern can match, exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import NamedTuple

__all__ = ["Anchor", "Requirement", "Text", "anchor", "context_free", "prefix", "requirements"]

_REPEATS = {sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", sre_c.MAX_REPEAT)}
_ZERO_WIDTH = {sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT}

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
