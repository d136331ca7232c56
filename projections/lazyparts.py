"""A partitioned read model as of a position, each part decoded when it is
first looked at.

Why: the state at a position starts from a snapshot (or the committed
state) that holds *every* part of a read model: on a long log, tens of
thousands of unit records in ~1,500 plan parts, ~1,500 run parts, and so
on. Most questions look at a few of them (one run, the plans of the runs
open at P, the latest run), so decoding all of them, which was most of the
cost of a one-off ``uok state --at P``, is work nobody reads.
:class:`LazyParts` is a read-only mapping ``part key -> part``: parts the
fold forward touched are already decoded, the others are kept as their
stored encoding and decoded on first access (``parts[k]``, ``.get``,
``.items()`` …; iterating the keys or ``len`` decodes nothing).

Equality is that of a mapping (``LazyParts == dict`` compares contents, so
the property "snapshot + fold == fold from zero" is checked the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any


class Encoded:
    """A part not decoded yet: its content digest and encoding."""

    __slots__ = ("data", "digest")

    def __init__(self, digest: bytes, data: bytes):
        self.digest, self.data = digest, data


class LazyParts(Mapping[str, Any]):
    """``key -> part``; an :class:`Encoded` value is decoded (by ``decode(digest,
    data)``, which may share a cached object) the first time it is read.
    The parts are READ-ONLY, like every result of ``ProjectionRunner.state_at``."""

    __slots__ = ("_decode", "_parts")

    def __init__(self, parts: dict[str, Any], decode: Callable[[bytes, bytes], Any]):
        self._parts, self._decode = parts, decode

    def __getitem__(self, key: str) -> Any:
        part = self._parts[key]
        if part.__class__ is Encoded:
            part = self._parts[key] = self._decode(part.digest, part.data)
        return part

    def __iter__(self) -> Iterator[str]:
        return iter(self._parts)

    def __len__(self) -> int:
        return len(self._parts)

    def __contains__(self, key: object) -> bool:
        return key in self._parts

    def decoded(self) -> int:
        """How many parts have been decoded so far (for tests and benchmarks)."""
        return sum(1 for p in self._parts.values() if p.__class__ is not Encoded)

    def __repr__(self) -> str:
        return f"LazyParts({len(self._parts)} parts, {self.decoded()} decoded)"
