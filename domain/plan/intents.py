"""Parallel intent (behaviour §12): what a unit is about to read and write,
as paths, directories and globs, and when two units must not run together.

A task declares ``intents = { read = ["docs/"], write = ["src/**"] }``; its
``writes`` (exact files) are write intents too. Two units *conflict* when a
write intent of one overlaps a write or read intent of the other: the
scheduler never runs them at the same time (``rules.intents``). Reads never
conflict with reads.

Overlap is decided on paths, never on the file system (the kernel is pure):

* a pattern without a glob character names a file *or* a directory: it
  overlaps every path at or below it (``src`` overlaps ``src/app.py``);
* a glob (``*`` within a segment, ``**`` across segments, ``?``, ``[...]``)
  overlaps a plain path it matches, or a path below one it matches;
* two globs overlap when the literal directory prefix of one contains the
  other's: conservative (``src/*.py`` and ``src/*.md`` are held apart), so
  a real overlap is never missed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple, Protocol

_GLOB = re.compile(r"[*?\[]")


class HasIntents(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def writes(self) -> Sequence[str]: ...
    @property
    def read_intents(self) -> Sequence[str]: ...
    @property
    def write_intents(self) -> Sequence[str]: ...


def is_glob(pattern: str) -> bool:
    return bool(_GLOB.search(pattern))


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.strip("/").split("/") if p and p != ".")


def _literal_prefix(pattern: str) -> tuple[str, ...]:
    """The directory segments before the first segment with a glob character."""
    out = []
    for part in _parts(pattern):
        if is_glob(part):
            break
        out.append(part)
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` as a regex over whole paths: ``**`` any depth, ``*`` and
    ``?`` within a segment, ``[...]`` a class; a match also covers the paths
    below the matched one."""
    out, i = [], 0
    text = "/".join(_parts(pattern))
    while i < len(text):
        c = text[i]
        if text.startswith("**", i):
            i += 2
            if text.startswith("/", i):  # "**/" matches zero or more whole segments
                i += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = text.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = text[i + 1 : end].replace("\\", "\\\\")
                out.append(f"[{'^' + body[1:] if body.startswith('!') else body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + "(?:/.*)?")


def _below(prefix: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return path[: len(prefix)] == prefix


def overlaps(a: str, b: str) -> bool:
    """True when some path is covered by both patterns (see the module doc)."""
    ga, gb = is_glob(a), is_glob(b)
    if not ga and not gb:
        pa, pb = _parts(a), _parts(b)
        return _below(pa, pb) or _below(pb, pa)
    if ga and not gb:
        a, b = b, a
    if not is_glob(a):  # a plain, b a glob
        path = "/".join(_parts(a))
        if _regex(b).fullmatch(path):
            return True
        # a names a directory the glob reaches into (src vs src/**/x.py)
        return _below(_parts(a), _literal_prefix(b))
    pa, pb = _literal_prefix(a), _literal_prefix(b)
    return _below(pa, pb) or _below(pb, pa)


class Intents(NamedTuple):
    reads: tuple[str, ...]
    writes: tuple[str, ...]


def intents_of(node: HasIntents) -> Intents:
    return Intents(tuple(node.read_intents), (*node.write_intents, *node.writes))


def conflict(a: HasIntents, b: HasIntents) -> str:
    """Why ``a`` must not run while ``b`` does ("" if it may): the first
    overlapping pair, writes against writes first."""
    ia, ib = intents_of(a), intents_of(b)
    for mine, kind_a, theirs, kind_b in (
        (ia.writes, "write", ib.writes, "write"),
        (ia.writes, "write", ib.reads, "read"),
        (ia.reads, "read", ib.writes, "write"),
    ):
        for x in mine:
            for y in theirs:
                if overlaps(x, y):
                    return f"{kind_a} intent '{x}' overlaps {kind_b} intent '{y}' of {b.id}"
    return ""


def has_intents(nodes: Iterable[HasIntents]) -> bool:
    return any(n.read_intents or n.write_intents for n in nodes)


def intent_conflicts(nodes: Sequence[HasIntents]) -> list[tuple[str, str, str]]:
    """Every pair of units whose intents conflict, (a, b, why), in plan order:
    what ``uok plan show`` lists. Pairs where neither declares intents
    beyond ``writes`` are the file conflicts reported already."""
    out: list[tuple[str, str, str]] = []
    if not has_intents(nodes):
        return out
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            if not (a.read_intents or a.write_intents or b.read_intents or b.write_intents):
                continue
            why = conflict(a, b)
            if why:
                out.append((a.id, b.id, why))
    return out


def covers(pattern: str, path: str) -> bool:
    """True when the declared ``pattern`` covers the concrete ``path``: a
    plain pattern covers itself and what is below it, a glob what it matches
    (and what is below a match)."""
    if is_glob(pattern):
        return bool(_regex(pattern).fullmatch("/".join(_parts(path))))
    return _below(_parts(pattern), _parts(path))
