"""The stored topics a set of read models folds (projections/folding.py):
remembered once every event they name is known, never while one is not
(an event class defined later must not be skipped)."""

from __future__ import annotations

from uok.projections import folding, registry


def test_topics_are_remembered_only_when_every_named_event_is_known():
    types = tuple(p.types for p in registry.ALL if p.name in ("runs", "units", "turns", "costs"))
    first = folding.wanted_topics(types)
    assert first is not None and "UnitTransitioned/v0" in first
    assert folding._WANTED[types] == tuple(first)  # remembered
    assert folding.wanted_topics(iter(types)) == first and folding.wanted_topics(types) is not first  # a copy
    unknown = (frozenset({"UnitTransitioned", "NoSuchEventYet"}),)
    got = folding.wanted_topics(unknown)
    assert got is not None and "UnitTransitioned/v0" in got and not any(t.startswith("NoSuchEventYet") for t in got)
    assert unknown not in folding._WANTED  # asked again, it looks the name up again
    assert folding.wanted_topics((frozenset({"UnitTransitioned"}), None)) is None
