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

Rows this process appended itself (a run's, caught up at its end: the
store's ``appended_rows``, issue 15) are not read back: they were hashed
when they were written, so once they chain from the verified hash before
them and the log's hash at their end is the one computed for them, they
are folded as written (one hash lookup instead of a read and a hash per
row). Any mismatch reads that range from the log and verifies it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Collection, Iterator, Sequence

from uok.domain.log.chain import GENESIS, ChainBroken, LengthPrefixed
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
        streams, kinds = LengthPrefixed(), LengthPrefixed()
        kept = getattr(self.store, "appended_rows", None)
        known = kept() if kept is not None else None  # what this process appended itself (a run's end)
        lo = after
        while lo < upto:
            hi = min(lo + page, upto)
            if known is not None:
                first, last = known[1][0][0], known[1][-1][0]
                if lo < first - 1 < hi:
                    hi = first - 1  # up to the kept rows from the log, then the kept rows
                elif first - 1 <= lo < last:
                    hi = min(hi, last)
                    rows = self._kept(known, lo, hi, prev)
                    if rows is not None:
                        prev = known[1][hi - first][5]
                        yield hi, [(p, t, pl) for p, _s, _v, t, pl, _h in rows if wanted is None or t in wanted]
                        lo = hi
                        continue
            out = []
            expected = lo + 1
            for pos, stream, version, topic, payload, stored in self.store.range_rows(lo, hi):
                if pos != expected:
                    raise ChainBroken(expected, f"expected position {expected}, found {pos} (gap or reorder)")
                prev = sha256(
                    b"".join((prev, u64(pos), streams[stream], u64(version), kinds[topic], u32(len(payload)), payload))
                ).digest()
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

    def _kept(
        self, known: tuple[bytes, list[tuple[int, str, int, str, bytes, bytes]]], lo: int, hi: int, prev: bytes
    ) -> list[tuple[int, str, int, str, bytes, bytes]] | None:
        """The rows ``lo < position <= hi`` this process appended and hashed
        itself (:meth:`SqliteEventStore.appended_rows`), when they are what
        the log holds: they chain from ``prev`` (the verified hash at ``lo``)
        and the log's hash at ``hi`` is the one computed for them. Then they
        are folded as written, not read back and hashed again; else (the log
        is not what was appended: rolled back, another file, altered) None,
        and the range is read from the log and verified as any other."""
        before, rows = known
        first = rows[0][0]
        if prev != (before if lo == first - 1 else rows[lo - first][5]):
            return None
        if self.store.hash_at(hi) != rows[hi - first][5]:
            return None
        return rows[lo - first + 1 : hi - first + 1]

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
