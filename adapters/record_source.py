"""The projection runner's view of the raw log, on either store.

:class:`ChainedRecordSource` implements :class:`uok.projections.port.RecordSource`
on any :class:`uok.adapters.log_store.LogStore`: pages of ``(position, topic,
payload)`` covering consecutive position ranges, each range one short read
(no statement stays open between ranges).

With ``verify`` (the default) every row of the range is read and its chain
hash recomputed, anchored at the stored hash of the event before ``after``
(GENESIS at 0); a row that does not match raises
:class:`uok.domain.log.chain.ChainBroken`, so no read model is ever folded from
an altered log. Rows of unwanted topics are then dropped in Python, still
undecoded. Without it, the store filters by topic.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterator, Sequence

from uok.domain.log.chain import GENESIS, ChainBroken
from uok.projections.port import Row

_U64 = struct.Struct(">Q").pack
_U32 = struct.Struct(">I").pack


class ChainedRecordSource:
    def __init__(self, store, *, verify: bool = True):
        self.store = store
        self.verify = verify

    def head(self) -> tuple[int, bytes]:
        return self.store.head()

    def hash_at(self, position: int) -> bytes | None:
        return self.store.hash_at(position)

    def scan(
        self, after: int, upto: int, *, topics: Collection[str] | None = None, page: int = 10_000
    ) -> Iterator[tuple[int, Sequence[Row]]]:
        if not self.verify:
            yield from self._scan_unverified(after, upto, topics, page)
            return
        wanted = None if topics is None else frozenset(topics)
        prev = GENESIS if after == 0 else self.hash_at(after)
        if prev is None:
            raise ChainBroken(after, "the event before the first one read is missing")
        u64, u32, sha256 = _U64, _U32, hashlib.sha256
        # a stream's or topic's length-prefixed UTF-8 bytes, made once per scan: they repeat
        streams: dict[str, bytes] = {}
        kinds: dict[str, bytes] = {}
        lo = after
        while lo < upto:
            hi = min(lo + page, upto)
            out = []
            expected = lo + 1
            for pos, stream, version, topic, payload, stored in self.store.range_rows(lo, hi):
                if pos != expected:
                    raise ChainBroken(expected, f"expected position {expected}, found {pos} (gap or reorder)")
                st = streams.get(stream)
                if st is None:
                    b = stream.encode()
                    st = streams[stream] = u32(len(b)) + b
                tp = kinds.get(topic)
                if tp is None:
                    b = topic.encode()
                    tp = kinds[topic] = u32(len(b)) + b
                prev = sha256(b"".join((prev, u64(pos), st, u64(version), tp, u32(len(payload)), payload))).digest()
                if prev != stored:
                    raise ChainBroken(
                        pos, "stored hash does not match the recomputed hash (the log was altered or damaged)"
                    )
                if wanted is None or topic in wanted:
                    out.append((pos, topic, payload))
                expected += 1
            if expected != hi + 1:
                raise ChainBroken(expected, f"events {expected}..{hi} are missing")
            yield hi, out
            lo = hi

    def _scan_unverified(
        self, after: int, upto: int, topics: Collection[str] | None, page: int
    ) -> Iterator[tuple[int, Sequence[Row]]]:
        chosen = None if topics is None else sorted(set(topics))
        lo = after
        while lo < upto:
            hi = min(lo + page, upto)
            if chosen is None:
                rows = [(r[0], r[3], r[4]) for r in self.store.range_rows(lo, hi)]
            else:
                rows = self.store.range_rows(lo, hi, chosen)
            yield hi, rows
            lo = hi
