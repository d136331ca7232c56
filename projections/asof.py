"""Read models as of a past position: the nearest snapshot (or the committed
state, if nearer), folded forward to the position, written nowhere.

What keeps a query cheap on a long log:

* **parts read when looked at**: a partitioned read model comes back as a
  :class:`~uok.projections.lazyparts.LazyParts` mapping; a snapshot's parts
  are read and decoded only when the fold or the reader touches them;
* **delta snapshots** (:mod:`uok.projections.manifests`): at most a tenth
  of the snapshot interval to fold forward;
* **a scope** (``only``): for a question about one run, its plan, its turns
  and costs, the other parts are neither read nor folded, and are absent
  from the answer;
* **within one process** (an :class:`AsOf` answers many queries: ``uok ui``,
  a benchmark), parts decoded once are shared by digest, and the events of
  each window folded (verified and decoded) are kept, so a later query in the same window reads, hash-checks and decodes
  nothing again; both are bounded (``cache_bytes``, ``window_events``).

Every row read from the log is hash-checked by the source's scan
(anchored at the stored hash of the position before it), exactly as before.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from functools import partial
from typing import Any

from uok.domain.log import codec
from uok.projections.base import PartitionedProjection, Projection
from uok.projections.folding import DEFAULT_PAGE, wanted_topics
from uok.projections.lazyparts import Encoded, LazyParts
from uok.projections.live import Live
from uok.projections.port import ProjectionRepository, RecordSource

DEFAULT_CACHE_BYTES = 32 << 20  # encoded bytes of decoded parts kept for time travel
DEFAULT_WINDOW_EVENTS = 20_000  # decoded events of folded windows kept for later queries (~800 bytes each)

Scope = Mapping[str, Collection[str]]  # projection name -> the part keys wanted


class ScopedLive(Live):
    """A read model folded for some of its parts only: events of other parts
    are skipped (a several-parts event is folded, then the result filtered)."""

    __slots__ = ("scope",)

    def __init__(self, proj: Projection, scope: Collection[str]):
        super().__init__(proj)
        self.scope = scope

    def fold(self, position: int, event: Any) -> None:
        k = self.key(event)
        if k is None or (k.__class__ is str and k not in self.scope):
            return
        super().fold(position, event)


class AsOf:
    """Answers ``state_at`` queries for one runner (its caches live here)."""

    def __init__(
        self,
        source: RecordSource,
        repo: ProjectionRepository,
        projections: Mapping[str, Projection],
        *,
        page: int = DEFAULT_PAGE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        window_events: int = DEFAULT_WINDOW_EVENTS,
    ):
        self.source, self.repo, self.projections, self.page = source, repo, projections, page
        self.cache_bytes, self.window_events = cache_bytes, window_events
        self._cache: OrderedDict[tuple[str, bytes], tuple[Any, bytes]] = OrderedDict()  # (name, digest) -> part
        self._cached_bytes = 0
        self._windows: OrderedDict[tuple[int, tuple[str, ...] | None], _Window] = OrderedDict()
        self._snapshots: dict[tuple[str, int], tuple[int, list[int]] | None] = {}
        self._first: dict[tuple[str, int], tuple[int, int, tuple[int, Mapping[str, bytes]] | None]] = {}
        self._manifests: OrderedDict[tuple[str, int, int], tuple[int, Mapping[str, bytes]]] = OrderedDict()
        self._window_total = 0

    def state_at(self, position: int, names: Iterable[str], only: Scope | None = None) -> dict[str, Any]:
        names = list(names)
        heads = self.repo.heads()
        cold = [
            (name, self.projections[name].version)
            for name in names
            if (h := heads.get(name)) is not None
            and h.version == self.projections[name].version
            and (name, h.version) not in self._snapshots
        ]
        found = self.repo.snapshot_manifests(cold, position) if cold else {}  # one read for all of them
        temps: list[Live] = []
        digests: dict[str, Mapping[str, bytes]] = {}
        whole: list[tuple[Live, int, Mapping[str, bytes], Collection[str] | None]] = []  # non-partitioned snapshots
        for name in names:
            p = self.projections[name]
            scope = None if only is None else only.get(name)
            t = Live(p) if scope is None else ScopedLive(p, scope)
            h = heads.get(name)
            base = 0
            if h is not None and h.version == p.version:
                snap = self._snapshot(name, p.version, position, h.position, found)
                if h.position <= position and (snap is None or h.position > snap[0]):
                    stored = self.repo.load_parts(name)
                    digests[name] = {k: d for k, (d, _data) in stored.items()}
                    self._borrow(t, digests[name], dict(stored.values()), scope)
                    base = h.position
                elif snap is not None and isinstance(p, PartitionedProjection):
                    digests[name] = snap[1]  # parts are read when the fold or the reader needs them
                    self._borrow(t, snap[1], None, scope)
                    base = snap[0]
                elif snap is not None:
                    whole.append((t, snap[0], snap[1], scope))
            t.start = t.committed = base
            temps.append(t)
        self._read_now(temps, whole, digests)
        self._fold(temps, position)
        out: dict[str, Any] = {}
        for t in temps:
            if isinstance(t.proj, PartitionedProjection):
                out[t.name] = self._lazy_state(t, digests.get(t.name, {}))
            else:
                out[t.name] = t.state()
        return out

    def _read_now(
        self,
        temps: list[Live],
        whole: list[tuple[Live, int, Mapping[str, bytes], Collection[str] | None]],
        digests: dict[str, Mapping[str, bytes]],
    ) -> None:
        """Read, in one go, the parts a query will need for certain: those of
        the read models kept whole (not partitioned), and the few parts a scoped
        read model asked for (``only``); the other parts stay unread until
        looked at."""
        wanted: dict[str, set[bytes]] = {}
        for t, _spos, manifest, _scope in whole:
            wanted[t.name] = {d for d in manifest.values() if (t.name, d) not in self._cache}
        for t in temps:
            if isinstance(t, ScopedLive) and t.unread:
                wanted[t.name] = {d for k, d in t.unread.items() if k not in t.parts}
        wanted = {name: ds for name, ds in wanted.items() if ds}
        blobs = self.repo.load_blobs_of({name: sorted(ds) for name, ds in wanted.items()}) if wanted else {}
        for t, spos, manifest, scope in whole:
            got = blobs.get(t.name, {})
            if len(got) == len(wanted.get(t.name, ())):  # else a concurrent rebuild dropped them: fold from zero
                digests[t.name] = manifest
                self._borrow(t, manifest, got, scope)
                t.start = t.committed = spos
        for t in temps:
            if isinstance(t, ScopedLive) and t.unread and t.name in blobs:
                got = blobs[t.name]
                for k, d in t.unread.items():
                    if k not in t.parts and d in got:
                        t.lazy[k] = got[d]

    # -- snapshots and parts ---------------------------------------------------
    def _snapshot(
        self, name: str, version: int, position: int, head: int, found: Mapping[str, tuple[int, Mapping[str, bytes]]]
    ) -> tuple[int, Mapping[str, bytes]] | None:
        """The latest snapshot at or before ``position`` (its position and
        resolved manifest). A one-off query asks the store; from its second
        query on, an AsOf keeps the snapshot positions of the read model (until
        its stored position moves) and the manifests it resolved."""
        key = (name, version)
        if key not in self._snapshots:
            self._snapshots[key] = None
            snap = found.get(name)  # read for every read model of the query at once (state_at)
            self._first[key] = (head, position, snap)
            return snap
        first = self._first.get(key)
        if first is not None and first[0] == head and first[1] == position:  # asked again (run_states)
            return first[2]
        seen = self._snapshots[key]
        if seen is None or seen[0] != head:
            seen = self._snapshots[key] = (head, self.repo.snapshot_positions(name, version))
        i = bisect_right(seen[1], position) - 1
        if i < 0:
            return None
        mkey = (name, version, seen[1][i])
        snap = self._manifests.get(mkey)
        if snap is None:
            snap = self.repo.snapshot_manifest(name, version, seen[1][i])
            if snap is None:
                return None
            self._manifests[mkey] = snap
            if len(self._manifests) > 64:
                self._manifests.popitem(last=False)
        else:
            self._manifests.move_to_end(mkey)
        return snap

    def _borrow(
        self, t: Live, manifest: Mapping[str, bytes], blobs: dict[bytes, bytes] | None, scope: Collection[str] | None
    ) -> None:
        """Hand ``t`` the parts of a stored state (those in ``scope``): the ones
        decoded before, shared (copied before a fold changes them); the others
        undecoded: their encodings from ``blobs`` (``t.lazy``), or (None) known
        by digest only (``t.unread``, the manifest itself: nothing is made per
        part) and read when first needed."""
        cache, name = self._cache, t.name
        repo = self.repo
        t.fetch = lambda digests: repo.load_blobs(name, digests)
        items = manifest if scope is None else {k: manifest[k] for k in scope if k in manifest}
        if blobs is None:
            t.unread = items
            if cache:
                for k, d in items.items():
                    hit = cache.get((name, d))
                    if hit is not None:
                        cache.move_to_end((name, d))
                        t.borrow(k, hit[0], hit[1])
            return
        partitioned = isinstance(t.proj, PartitionedProjection)
        for k, d in items.items():
            hit = cache.get((name, d))
            if hit is not None:
                cache.move_to_end((name, d))
                t.borrow(k, hit[0], hit[1])
            elif partitioned:
                t.lazy[k] = blobs[d]
            else:
                t.borrow(k, self._decoded(t, d, blobs[d]), blobs[d])

    def _decoded(self, t: Live, digest: bytes, data: bytes) -> Any:
        """The part encoded as ``data``, decoded once (by digest) and shared
        read-only; the least recently used go past ``cache_bytes``."""
        cache, key = self._cache, (t.name, digest)
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
            return hit[0]
        part = t._dec(data)
        cache[key] = (part, data)
        self._cached_bytes += len(data)
        while self._cached_bytes > self.cache_bytes and len(cache) > 1:
            _key, (_obj, old) = cache.popitem(last=False)
            self._cached_bytes -= len(old)
        return part

    def _lazy_state(self, t: Live, digests: Mapping[str, bytes]) -> LazyParts:
        parts: dict[str, Any] = {
            k: data if data.__class__ is Encoded else Encoded(digests[k], data)  # type: ignore[arg-type]
            for k, data in t.lazy.items()
        }
        parts.update(t.parts)
        if isinstance(t, ScopedLive):
            parts = {k: v for k, v in parts.items() if k in t.scope}
        return LazyParts(parts, partial(self._decoded, t), t.fetch, t.unread)

    # -- folding forward ---------------------------------------------------------
    def _fold(self, temps: list[Live], position: int) -> None:
        pending = [t for t in temps if t.start < position]
        if not pending:
            return
        start = min(t.start for t in pending)
        topics = wanted_topics(t.proj.types for t in pending)
        w, cut, asked, read = self._window(start, position, topics)
        # a read model scoped to no part (``only={"units": ()}``) has nothing to fold; its topics are
        # read all the same, so that the window serves the query that follows for its parts (run_states)
        pending = [t for t in pending if not (isinstance(t, ScopedLive) and not t.scope)]
        route: dict[str, list[Live]] = {}
        # a window read by an earlier query: a scoped read model folds its parts' events only, by the
        # window's index; read just now, one pass folds all (building an index would cost that pass again)
        whole = pending if read else [t for t in pending if not isinstance(t, ScopedLive)]
        if whole:
            for pos, topic, e in w.events[:cut]:
                targets = route.get(topic)
                if targets is None:
                    targets = route[topic] = [t for t in whole if t.proj.wants(topic)] if topic in asked else []
                for t in targets:
                    if pos > t.start:
                        t.fold(pos, e)
        for t in pending:
            if not read and isinstance(t, ScopedLive):
                index = w.index(t)
                found = [x for k in t.scope for x in index.get(k, ())]
                if len(t.scope) > 1:  # an event of several parts is indexed under each: fold it once
                    found = sorted({pos: (pos, e) for pos, e in found}.values(), key=lambda x: x[0])
                fold, after = Live.fold, t.start  # the index found its parts' events: no scope check again
                for pos, e in found:
                    if after < pos <= position:
                        fold(t, pos, e)

    def _window(
        self, start: int, position: int, topics: list[str] | None
    ) -> tuple[_Window, int, Collection[str], bool]:
        """The window of decoded events after ``start`` holding these topics up
        to ``position`` (read and hash-checked beyond what it held), how many
        of its events are at or before ``position``, the topics asked for (a
        window kept for more topics serves too), and whether events were read
        into it just now."""
        key = (start, None if topics is None else tuple(topics))
        asked: Collection[str] = _ALL if topics is None else frozenset(topics)
        w = self._windows.get(key)
        if w is None and topics is not None:
            these = frozenset(topics)
            for (wstart, wtopics), other in self._windows.items():
                if wstart == start and other.end >= position and (wtopics is None or these <= frozenset(wtopics)):
                    return other, bisect_right(other.positions, position), asked, False
        if w is None:
            w = self._windows[key] = _Window(start)
        else:
            self._windows.move_to_end(key)
        read = position > w.end
        if read:
            before = len(w.events)
            decode = codec.decode
            for end, rows in self.source.scan(w.end, position, topics=topics, page=self.page):
                for pos, topic, payload in rows:
                    if topic in asked:  # an unverified scan filters already; a verified one not
                        w.events.append((pos, topic, decode(topic, payload)))
                        w.positions.append(pos)
                w.end = end
            self._window_total += len(w.events) - before
            while self._window_total > self.window_events and len(self._windows) > 1:
                _k, old = self._windows.popitem(last=False)
                self._window_total -= len(old.events)
        return w, bisect_right(w.positions, position), asked, read


class _All:
    def __contains__(self, _item: object) -> bool:
        return True


_ALL: Collection[str] = _All()  # type: ignore[assignment]


class _Window:
    """The decoded events after ``start`` read so far (up to ``end``), and per
    read model an index ``part key -> [(position, event)]`` built on demand."""

    __slots__ = ("end", "events", "indexed", "positions", "start")

    def __init__(self, start: int):
        self.start = self.end = start
        self.events: list[tuple[int, str, Any]] = []
        self.positions: list[int] = []
        self.indexed: dict[str, tuple[int, dict[str, list[tuple[int, Any]]]]] = {}

    def index(self, t: Live) -> dict[str, list[tuple[int, Any]]]:
        """``part key -> [(position, event)]`` of ``t``'s read model over this
        window, extended to the events read since it was last built."""
        done, index = self.indexed.get(t.name, (0, {}))
        if done < len(self.events):
            wants, key = t.proj.wants, t.key
            for pos, topic, e in self.events[done:]:
                if not wants(topic):
                    continue
                k = key(e)
                if k is None:
                    continue
                for kk in (k,) if k.__class__ is str else k:
                    index.setdefault(kk, []).append((pos, e))
            self.indexed[t.name] = (len(self.events), index)
        return index
