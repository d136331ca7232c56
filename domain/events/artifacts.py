"""Events of artifact gating (behaviour §11): what the shell saw of the
files units require, and the kernel holding a unit until they exist."""

from __future__ import annotations

from typing import ClassVar

from uok.domain.events.base import Event


class ArtifactsObserved(Event, frozen=True, kw_only=True):
    """The shell looked at the artifacts the plan's units require (and their
    drafts) after a unit's execution: path -> ``present`` | ``blank`` |
    ``missing`` (:mod:`uok.domain.plan.artifacts`). Recorded only when
    something changed since the last observation of the run."""

    OBSERVED: ClassVar[bool] = True

    facts: dict[str, str]


class UnitHeld(Event, frozen=True, kw_only=True):
    """A unit whose dependencies are done waits for artifacts it requires.

    It stays ``queued`` (held, not failed): it is dispatched as soon as an
    observation shows the files, in this run or a later one. Emitted once
    per run and reason, so ``uok status`` can say which file is missing."""

    plan_id: str
    unit_id: str
    reasons: tuple[str, ...]

    @property
    def reason(self) -> str:
        return "held: " + "; ".join(self.reasons)


class ProductsObserved(Event, frozen=True, kw_only=True):
    """The shell looked at the declared products of a unit that runs no
    command (a ``complete-slice`` verifying its slice's products, behaviour
    §13): path/glob -> ``present`` | ``blank`` | ``missing``."""

    OBSERVED: ClassVar[bool] = True

    turn_id: str
    unit_id: str
    facts: dict[str, str]
