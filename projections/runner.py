"""Keeps read models caught up with the log: tracked positions, batched
commits, snapshots, rebuilds and the state as of any past position.

How a catch-up works: the runner loads each projection's parts and tracked
position, reads the log from the lowest position in pages of position
ranges, skips (without decoding) every row whose topic no projection
wants, decodes the rest once with msgspec, and folds each event into the
one part of each projection it touches. Every ``batch`` events it commits
the parts touched since the last commit together with the new positions,
in ONE transaction: a process killed at any moment leaves each projection
at its last committed position with exactly the state folded up to it, and
the next catch-up (or ``uok projections rebuild``) resumes from there.

Snapshots are taken at every multiple of ``snapshot_every`` (whatever the
batch size or the position a catch-up started from, so an interrupted and
resumed rebuild writes the same snapshots as an uninterrupted one). A
snapshot is a manifest ``part key -> digest`` plus the encodings of the
parts that changed since the previous snapshot: unchanged parts are shared.

The state at position P is the latest snapshot at or before P (or the
committed state, if that is closer), folded forward to P.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import msgspec
from uok.domain.log import codec
from uok.projections import manifests
from uok.projections.asof import DEFAULT_CACHE_BYTES, DEFAULT_WINDOW_EVENTS, AsOf, Scope
from uok.projections.base import Projection
from uok.projections.chunkedlive import live_of
from uok.projections.folding import DEFAULT_PAGE, wanted_topics
from uok.projections.folding import fold_from_zero as fold_from_zero  # re-exported: the reference of time travel
from uok.projections.folding import topics_of as topics_of
from uok.projections.live import Live
from uok.projections.port import ProjectionConflict, ProjectionRepository, RecordSource, StoredHead

DEFAULT_BATCH = 10_000
DEFAULT_SNAPSHOT_EVERY = 10_000

Progress = Callable[[int, int], None]  # (position reached, target position)


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    stored_version: int | None
    position: int
    head: int
    lag: int
    rebuilding: bool
    parts: int
    snapshots: int


class ProjectionRunner:
    """Maintains ``projections`` over ``source``, persisting into ``repo``."""

    def __init__(
        self,
        source: RecordSource,
        repo: ProjectionRepository,
        projections: Sequence[Projection],
        *,
        batch: int = DEFAULT_BATCH,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        delta_every: int | None = None,
        page: int = DEFAULT_PAGE,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        window_events: int = DEFAULT_WINDOW_EVENTS,
        readonly: bool = False,
    ):
        """``delta_every``: the interval of delta snapshots between full ones
        (projections/manifests.py); it must divide ``snapshot_every``. None: a
        tenth of ``snapshot_every`` when that divides it (1,000 by default); 0:
        none. ``cache_bytes``, ``window_events``: what time travel keeps for
        later queries of this runner (decoded parts, decoded events of the
        windows it folded; projections/asof.py)."""
        if batch <= 0 or snapshot_every <= 0 or page <= 0:
            raise ValueError("batch, snapshot_every and page must be positive")
        if delta_every is None:
            delta_every = manifests.delta_interval(snapshot_every)
        if delta_every < 0 or (delta_every and snapshot_every % delta_every):
            raise ValueError(f"delta_every ({delta_every}) must divide snapshot_every ({snapshot_every})")
        self.delta_every = delta_every if delta_every and delta_every < snapshot_every else 0
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate projection names in {names}")
        self.source, self.repo = source, repo
        self.projections = {p.name: p for p in projections}
        self.batch, self.snapshot_every, self.page = batch, snapshot_every, page
        self._live: dict[str, Live] = {}
        self.readonly = readonly  # a reading command: fold in memory, never write the read models back
        self._asof = AsOf(
            source, repo, self.projections, page=page, cache_bytes=cache_bytes, window_events=window_events
        )

    # ------------------------------------------------------------------ status
    def status(self) -> list[ProjectionStatus]:
        heads = self.repo.heads()
        head = self.source.head()[0]
        out = []
        for name, p in self.projections.items():
            h = heads.get(name)
            current = h if h is not None and h.version == p.version else None
            pos = current.position if current else 0
            out.append(
                ProjectionStatus(
                    name=name,
                    version=p.version,
                    stored_version=h.version if h else None,
                    position=pos,
                    head=head,
                    lag=head - pos,
                    rebuilding=bool(h and h.rebuilding),
                    parts=current.parts if current else 0,
                    snapshots=len(self.repo.snapshot_positions(name, p.version)) if current else 0,
                )
            )
        return out

    # ------------------------------------------------------------------ loading
    def _load(self, names: Iterable[str]) -> list[Live]:
        """The projections' in-memory states, reloaded if another process
        moved them, reset if their version changed or their position names
        an event that is not in this log (a different file at this path)."""
        heads = self.repo.heads()
        lives = []
        for name in names:
            p = self.projections[name]
            h: StoredHead | None = heads.get(name)
            live = self._live.get(name)
            if h is None or h.version != p.version or (h.position and self.source.hash_at(h.position) != h.hash):
                self.repo.reset(name, p.version, rebuilding=False)
                live = self._live[name] = live_of(p)
            elif live is None or live.committed != h.position or live.touched or live.unsaved:
                live = self._live[name] = live_of(p, h.position, h.rebuilding)
                live.load(self.repo.load_parts(name))
                full_at = h.position // self.snapshot_every * self.snapshot_every
                if full_at == 0:
                    live.full = (0, {})
                elif (manifest := self.repo.full_manifest(name, p.version, full_at)) is not None:
                    live.full = (full_at, manifest)
            else:
                live.rebuilding = h.rebuilding
            lives.append(live)
        return lives

    def reset(self, names: Iterable[str] | None = None) -> None:
        """Forget the named read models (all by default) and their snapshots."""
        for name in names or list(self.projections):
            p = self.projections[name]
            self.repo.reset(name, p.version, rebuilding=True)
            self._live[name] = live_of(p, 0, rebuilding=True)

    # ------------------------------------------------------------------ catching up
    def catch_up(
        self,
        names: Iterable[str] | None = None,
        *,
        upto: int | None = None,
        progress: Progress | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> int:
        """Fold the log into the named projections up to ``upto`` (the head by
        default), committing every ``batch`` events. Returns the position
        reached. ``on_commit(n)`` is called after the n-th commit.

        Read-only (a reading command's runner): nothing is folded or written;
        :meth:`states` folds what it needs in memory instead."""
        if self.readonly:
            return self.source.head()[0] if upto is None else upto
        lives = self._load(list(names or self.projections))
        target = self.source.head()[0] if upto is None else upto
        lives = [lv for lv in lives if lv.committed < target]
        if not lives:
            return target
        start = min(lv.committed for lv in lives)
        every = min(self._interval(lv.proj) for lv in lives)  # full snapshots and the deltas between them
        next_snap = (start // every + 1) * every
        next_commit = start + self.batch
        route: dict[str, list[Live]] = {}
        topics = wanted_topics(lv.proj.types for lv in lives)
        decode = codec.decode
        commits = 0
        try:
            for range_end, rows in self.source.scan(start, target, topics=topics, page=self.page):
                for pos, topic, payload in rows:
                    targets = route.get(topic)
                    if targets is None:
                        targets = route[topic] = [lv for lv in lives if lv.proj.wants(topic)]
                    if not targets:
                        continue
                    while pos > next_snap:
                        self._snapshot(lives, next_snap)
                        next_snap += every
                    e = decode(topic, payload)
                    for live in targets:
                        if pos > live.start:
                            live.fold(pos, e)
                while next_snap <= range_end:
                    self._snapshot(lives, next_snap)
                    next_snap += every
                if progress is not None:
                    progress(range_end, target)
                if range_end >= next_commit and range_end < target:
                    self._commit(lives, range_end, finished=False)
                    commits += 1
                    next_commit = range_end + self.batch
                    if on_commit is not None:
                        on_commit(commits)
            self._commit(lives, target, finished=True)
        except ProjectionConflict:
            # another process is catching up the same read models; let it
            for lv in lives:
                self._live.pop(lv.name, None)
        return target

    def _interval(self, proj: Projection) -> int:
        """Every how many events ``proj`` takes a snapshot (full or delta)."""
        if not self.delta_every or not proj.delta_snapshots:
            return self.snapshot_every
        d = proj.delta_density
        return self.delta_every // d if d > 1 and self.delta_every % d == 0 else self.delta_every

    def _snapshot(self, lives: list[Live], position: int) -> None:
        full = position % self.snapshot_every == 0
        for live in lives:
            if live.committed < position and (full or position % self._interval(live.proj) == 0):
                live.snapshot(position, full=full)

    def _commit(self, lives: list[Live], position: int, *, finished: bool) -> None:
        hash_ = self.source.hash_at(position) if position else b""
        writes = [lv.write(position, hash_ or b"", finished=finished) for lv in lives]
        self.repo.commit(writes)
        for lv in lives:
            lv.committed_to(position, finished=finished)

    def rebuild(
        self,
        names: Iterable[str] | None = None,
        *,
        restart: bool = False,
        progress: Progress | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> tuple[int, dict[str, int]]:
        """Rebuild from zero. A rebuild interrupted earlier (its projections
        still marked ``rebuilding``) resumes from its last committed position
        unless ``restart``. Returns (position reached, where each began)."""
        names = list(names or self.projections)
        heads = self.repo.heads()
        began: dict[str, int] = {}
        fresh = []
        for name in names:
            h = heads.get(name)
            p = self.projections[name]
            if not restart and h is not None and h.rebuilding and h.version == p.version:
                began[name] = h.position
            else:
                fresh.append(name)
                began[name] = 0
        self.reset(fresh)
        return self.catch_up(names, progress=progress, on_commit=on_commit), began

    def states(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The current (caught-up) state of each named projection (read-only:
        the stored state folded forward in memory, written nowhere)."""
        names = list(names or self.projections)
        if self.readonly:
            return self.state_at(self.source.head()[0], names)
        self.catch_up(names)
        lives = self._load(names)
        return {lv.name: lv.state() for lv in lives}

    # ------------------------------------------------------------------ time travel
    def state_at(
        self, position: int, names: Iterable[str] | None = None, *, only: Scope | None = None
    ) -> dict[str, Any]:
        """Each named projection's state as of ``position``: the nearest
        snapshot at or before it (or the committed state, if nearer), folded
        forward. Writes nothing; works on any log, caught up or not.

        The result is READ-ONLY. A partitioned read model comes back as a
        :class:`~uok.projections.lazyparts.LazyParts` mapping: the parts the
        fold forward touched are decoded, every other part is read and
        decoded the first time it is looked at. ``only`` (projection name ->
        part keys): those read models hold just these parts, and events of
        other parts are not folded (a question about one run). Parts,
        and the events of the windows folded, are kept for later calls of
        this runner (projections/asof.py)."""
        return self._asof.state_at(position, list(names or self.projections), only)


def snapshot_interval(env: Mapping[str, str] | None = None) -> int:
    """The snapshot interval: ``UOK_SNAPSHOT_EVERY`` if set (the shell passes
    its environment in), else the default."""
    raw = (env or {}).get("UOK_SNAPSHOT_EVERY", "")
    try:
        n = int(raw)
    except ValueError:
        return DEFAULT_SNAPSHOT_EVERY
    return n if n > 0 else DEFAULT_SNAPSHOT_EVERY
