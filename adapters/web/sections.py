"""The parts of a unit's page, in order, as two small registries.

A unit page shows the unit's sections (what it is, its attempts, its
lifecycle); each attempt (turn) shows the turn's sections (phases, gate
runs with their rationales, the output it printed, what it cost). Work
that records more about a unit or a turn — the feedback a unit received,
held units, an agent's steps, the worker that ran it, full output logs —
adds one :class:`Section` here and one template under
``templates/sections/``, and every page that shows units (the web view and
``uok report``) shows it; a section whose data a page lacks is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Section:
    id: str  # the anchor and CSS class
    title: str
    template: str  # under templates/sections/
    shows: Callable[[Any], bool] = lambda _ctx: True


UNIT_SECTIONS: tuple[Section, ...] = (
    Section("definition", "Definition", "definition.html", lambda ctx: ctx["node"] is not None),
    Section("attempts", "Attempts", "attempts.html"),
    Section("lifecycle", "Lifecycle", "lifecycle.html", lambda ctx: bool(ctx["history"])),
)
"""Sections of a unit's page; ``shows(ctx)`` gets the page's data."""

TURN_SECTIONS: tuple[Section, ...] = (
    Section("phases", "Phases", "phases.html", lambda t: bool(t.phases)),
    Section("gates", "Gate runs", "gates.html", lambda t: bool(t.gates)),
    Section("agent", "Agent steps", "agent.html", lambda t: bool(t.steps)),
    Section("output", "Output", "output.html", lambda t: t.execution is not None),
    Section("cost", "Cost", "cost.html", lambda t: bool(t.costs)),
)
"""Sections of one attempt; ``shows(turn)`` gets the turn's detail."""
