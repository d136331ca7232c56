"""Folding a range of the log into read models from their empty state: the
stored topics a set of read models needs, and the fold from zero that
time travel's answers must equal (projections/asof.py, runner.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from uok.domain.log import codec
from uok.projections.base import Projection
from uok.projections.live import Live
from uok.projections.port import RecordSource

DEFAULT_PAGE = 10_000


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
    them folds every event (nothing may be skipped). Remembered per set of
    read models once every event they name is known (a time-travel query
    asks twice; ~10 us each to make)."""
    key = tuple(types)
    hit = _WANTED.get(key)
    if hit is not None:
        return list(hit)
    names: set[str] = set()
    for t in key:
        if t is None:
            return None
        names |= t
    topics = sorted(topics_of(names))
    if all(f"{name}/v0" in topics for name in names):  # no event named here is still unknown
        if len(_WANTED) >= 256:
            _WANTED.clear()
        _WANTED[key] = tuple(topics)
    return topics


_WANTED: dict[tuple[frozenset[str] | None, ...], tuple[str, ...]] = {}


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
