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

import itertools
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
    """``key -> part``; an :class:`Encoded` value, or a key known only by its
    digest in ``unread`` (a snapshot's manifest, shared as it is: nothing is
    made per part until it is looked at), is read (``fetch``) and decoded
    (``decode(digest, data)``, which may share a cached object) the first time
    it is looked at; ``items()`` and ``values()`` read every encoding still
    unread in one go first. A key of ``parts`` overrides its ``unread`` entry.
    The parts are READ-ONLY, like every result of ``ProjectionRunner.state_at``."""

    __slots__ = ("_decode", "_fetch", "_parts", "_unread")

    def __init__(
        self,
        parts: dict[str, Any],
        decode: Callable[[bytes, bytes], Any],
        fetch: Fetch,
        unread: Mapping[str, bytes] | None = None,
    ):
        self._parts, self._decode, self._fetch = parts, decode, fetch
        self._unread: Mapping[str, bytes] = unread or {}

    def __getitem__(self, key: str) -> Any:
        part = self._parts.get(key, _MISSING)
        if part is _MISSING:
            digest = self._unread[key]  # KeyError: no such part
            part = self._parts[key] = self._decode(digest, read(self._fetch, Encoded(digest)))
        elif part.__class__ is Encoded:
            part = self._parts[key] = self._decode(part.digest, read(self._fetch, part))
        return part

    def _decode_all(self) -> dict[str, Any]:
        parts, decode = self._parts, self._decode
        if self._unread:  # every part in one dict, in the manifest's order, then the parts it lacks
            merged: dict[str, Any] = {k: Encoded(d) for k, d in self._unread.items()}
            merged.update(parts)
            parts = self._parts = merged
            self._unread = {}
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
        unread = self._unread
        if not unread:
            return iter(self._parts)
        # the parts it lacks, listed now: looking a part up while iterating adds it to ``_parts``
        return itertools.chain(unread, [k for k in self._parts if k not in unread])

    def __len__(self) -> int:
        unread = self._unread
        return len(unread) + sum(1 for k in self._parts if k not in unread)

    def __contains__(self, key: object) -> bool:
        return key in self._parts or key in self._unread

    def decoded(self) -> int:
        """How many parts have been decoded so far (for tests and benchmarks)."""
        return sum(1 for p in self._parts.values() if p.__class__ is not Encoded)

    def __repr__(self) -> str:
        return f"LazyParts({len(self)} parts, {self.decoded()} decoded)"


_MISSING = object()
