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
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from uok.domain.log import codec
from uok.projections.base import PartitionedProjection, Projection
from uok.projections.lazyparts import Encoded, LazyParts
from uok.projections.live import Live
from uok.projections.port import ProjectionRepository, RecordSource

DEFAULT_PAGE = 10_000
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
        self._manifests: OrderedDict[tuple[str, int, int], tuple[int, dict[str, bytes]]] = OrderedDict()
        self._window_total = 0

    def state_at(self, position: int, names: Iterable[str], only: Scope | None = None) -> dict[str, Any]:
        heads = self.repo.heads()
        temps: list[Live] = []
        digests: dict[str, dict[str, bytes]] = {}
        for name in names:
            p = self.projections[name]
            scope = None if only is None else only.get(name)
            t = Live(p) if scope is None else ScopedLive(p, scope)
            h = heads.get(name)
            base = 0
            if h is not None and h.version == p.version:
                snap = self._snapshot(name, p.version, position, h.position)
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
                    spos, manifest = snap
                    missing = [d for d in set(manifest.values()) if (name, d) not in self._cache]
                    blobs = self.repo.load_blobs(name, missing) if missing else {}
                    if len(blobs) == len(missing):  # else a concurrent rebuild dropped them: fold from zero
                        digests[name] = manifest
                        self._borrow(t, manifest, blobs, scope)
                        base = spos
            t.start = t.committed = base
            temps.append(t)
        self._fold(temps, position)
        out: dict[str, Any] = {}
        for t in temps:
            if isinstance(t.proj, PartitionedProjection):
                out[t.name] = self._lazy_state(t, digests.get(t.name, {}))
            else:
                out[t.name] = t.state()
        return out

    # -- snapshots and parts ---------------------------------------------------
    def _snapshot(self, name: str, version: int, position: int, head: int) -> tuple[int, dict[str, bytes]] | None:
        """The latest snapshot at or before ``position`` (its position and
        resolved manifest). A one-off query asks the store; from its second
        query on, an AsOf keeps the snapshot positions of the read model (until
        its stored position moves) and the manifests it resolved."""
        key = (name, version)
        if key not in self._snapshots:
            self._snapshots[key] = None
            return self.repo.snapshot_manifest(name, version, position)
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
        self, t: Live, manifest: dict[str, bytes], blobs: dict[bytes, bytes] | None, scope: Collection[str] | None
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

    def _lazy_state(self, t: Live, digests: dict[str, bytes]) -> LazyParts:
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


def topics_of(types: Iterable[str]) -> list[str]:
    """Every stored topic spelling of these event types: today's version
    and the older ones an upcaster turns into it."""
    topics = []
    for name in types:
        try:
            cls = codec.event_class(name)
        except codec.UnknownEventError:
            continue  # a projection may name events another module has not added yet
        topics += [f"{name}/v{v}" for v in range(cls.VERSION + 1)]
    return topics


def wanted_topics(types: Iterable[frozenset[str] | None]) -> list[str] | None:
    """The stored topics some of these projections fold; None when one of
    them folds every event (nothing may be skipped)."""
    names: set[str] = set()
    for t in types:
        if t is None:
            return None
        names |= t
    return sorted(topics_of(names))


def fold_from_zero(source: RecordSource, projections: Sequence[Projection], position: int) -> dict[str, Any]:
    """Each projection folded from an empty state to ``position``, with no
    snapshot and no stored state: the reference that time travel must match."""
    temps = [Live(p) for p in projections]
    fold_range(source, temps, position)
    return {t.name: t.state() for t in temps}


def fold_range(source: RecordSource, temps: list[Live], position: int, page: int = DEFAULT_PAGE) -> None:
    """Fold rows after each live's ``start`` up to ``position`` (one scan)."""
    pending = [t for t in temps if t.start < position]
    if not pending:
        return
    start = min(t.start for t in pending)
    topics = wanted_topics(t.proj.types for t in pending)
    route: dict[str, list[Live]] = {}
    decode = codec.decode
    for _end, rows in source.scan(start, position, topics=topics, page=page):
        for pos, topic, payload in rows:
            targets = route.get(topic)
            if targets is None:
                targets = route[topic] = [t for t in pending if t.proj.wants(topic)]
            if not targets:
                continue
            e = decode(topic, payload)
            for t in targets:
                if pos > t.start:
                    t.fold(pos, e)
