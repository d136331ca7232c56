"""A partitioned read model as of a position, each part decoded when it is
first looked at.

Why: the state at a position starts from a snapshot (or the committed
state) that holds *every* part of a read model: on a long log, tens of
thousands of unit records in ~1,500 plan parts, ~1,500 run parts, and so
on. Most questions look at a few of them (one run, the plans of the runs
open at P, the latest run), so decoding all of them, which was most of the
cost of a one-off ``uok state --at P``, is work nobody reads.
:class:`LazyParts` is a read-only mapping ``part key -> part``: parts the
fold forward touched are already decoded, the others are known by their
digest only, and read from the store and decoded on first access
(``parts[k]``, ``.get``, ``.items()`` …; iterating the keys or ``len``
reads nothing).

Equality is that of a mapping (``LazyParts == dict`` compares contents, so
the property "snapshot + fold == fold from zero" is checked the same way).
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from typing import Any

from uok.domain.errors import RuntimeFailure


class PartsGone(RuntimeFailure):
    """A snapshot's part was dropped while it was being read (a rebuild of the
    read models started meanwhile): ask again."""


class Encoded:
    """A part not decoded yet: its content digest and, once read, its encoding."""

    __slots__ = ("data", "digest")

    def __init__(self, digest: bytes, data: bytes | None = None):
        self.digest, self.data = digest, data


Fetch = Callable[[list[bytes]], dict[bytes, bytes]]  # digests -> encodings (the blobs that exist)


def fetch_all(fetch: Fetch, encoded: list[Encoded]) -> None:
    """Read the encodings of ``encoded`` that are not read yet, in one go."""
    wanted = [e.digest for e in encoded if e.data is None]
    if not wanted:
        return
    blobs = fetch(wanted)
    for e in encoded:
        if e.data is None:
            data = blobs.get(e.digest)
            if data is None:
                raise PartsGone("the read models were rebuilt while this query read them: run it again")
            e.data = data


def read(fetch: Fetch, e: Encoded) -> bytes:
    """``e``'s encoding, read now if it was not yet."""
    if e.data is None:
        fetch_all(fetch, [e])
    assert e.data is not None  # fetch_all raises PartsGone otherwise
    return e.data


class LazyParts(Mapping[str, Any]):
    """``key -> part``; an :class:`Encoded` value is read (``fetch``) and
    decoded (``decode(digest, data)``, which may share a cached object) the
    first time it is looked at; ``items()`` and ``values()`` read every
    encoding still unread in one go first. The parts are READ-ONLY, like
    every result of ``ProjectionRunner.state_at``."""

    __slots__ = ("_decode", "_fetch", "_parts")

    def __init__(self, parts: dict[str, Any], decode: Callable[[bytes, bytes], Any], fetch: Fetch):
        self._parts, self._decode, self._fetch = parts, decode, fetch

    def __getitem__(self, key: str) -> Any:
        part = self._parts[key]
        if part.__class__ is Encoded:
            part = self._parts[key] = self._decode(part.digest, read(self._fetch, part))
        return part

    def _decode_all(self) -> dict[str, Any]:
        parts, decode = self._parts, self._decode
        pending = [k for k, v in parts.items() if v.__class__ is Encoded]
        if pending:
            fetch_all(self._fetch, [parts[k] for k in pending])
            for k in pending:
                e = parts[k]
                parts[k] = decode(e.digest, e.data)
        return parts

    def items(self) -> ItemsView[str, Any]:
        return self._decode_all().items()

    def values(self) -> ValuesView[Any]:
        return self._decode_all().values()

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
