"""Reading one log for the views of a run (the web UI, ``uok report``,
``uok trace``): the registered read models as of a position, one run's
timeline, one unit's lifecycle.

Everything goes through the store port (``read``/``head``) and the
projection runner (``state_at``), so it works on any store that implements
them. Nothing here appends an event. ``refresh`` checks the hash chain of
what was appended since the last call, so no view is ever computed from an
altered log; it may also catch the stored read models up (a cache in the
same file, as ``uok state`` and ``uok serve`` do) when they lag far behind,
so that "as of the head" stays cheap during a long live run.

The timeline of a run at the head is cached and folded forward: a live
page that refreshes on every new event folds only what is new.
"""

from __future__ import annotations

import threading
from typing import Any

from uok.adapters.plancontent import with_graph
from uok.domain.events import PlanCompiled, UnitTransitioned
from uok.domain.log import codec
from uok.domain.log.store import EventStorePort
from uok.projections.runner import ProjectionRunner, topics_of
from uok.projections.timeline import TOPICS, RunTimeline, TimelineFold

from uok.errors import InputError

CATCH_UP_LAG = 5_000
"""Catch the stored read models up when they are this many events behind."""


class PositionOutsideLog(InputError):
    """A position below 0 or above the head."""


class RunReader:
    """Thread-safe: one lock serialises the views (they share the runner's cache)."""

    def __init__(self, store: EventStorePort, runner: ProjectionRunner, *, verified: int = 0, catch_up: bool = True):
        self.store = store
        self.runner = runner
        self.lock = threading.RLock()
        self.verified = verified  # the chain is known good up to here
        self.catch_up = catch_up
        self._topics = topics_of(TOPICS)
        self._live: dict[str, TimelineFold] = {}  # run id -> its timeline folded to the head last seen

    # -- the log ---------------------------------------------------------------
    def head(self) -> int:
        return self.store.head()[0]

    def refresh(self) -> int:
        """Check the chain of the events appended since the last call (raises
        ``ChainBroken``), catch read models up if they lag; returns the head."""
        with self.lock:
            head = self.head()
            if head > self.verified:
                self.store.verify_chain(after=self.verified)  # type: ignore[attr-defined]
                self.verified = head
            if self.catch_up:
                lag = max((st.lag for st in self.runner.status()), default=0)
                if lag >= CATCH_UP_LAG:
                    self.runner.catch_up()
            return head

    def check(self, position: int | None) -> int:
        """``position`` (the head when None), or PositionOutsideLog."""
        head = self.head()
        if position is None:
            return head
        if position < 0 or position > head:
            raise PositionOutsideLog(f"position {position} is outside the log (head is {head})")
        return position

    # -- read models -------------------------------------------------------------
    def states(self, position: int, names: list[str] | None = None) -> dict[str, Any]:
        """The registered read models as of ``position`` (read-only results)."""
        with self.lock:
            return self.runner.state_at(position, names)

    def resolve_run(self, run: str, position: int) -> str:
        """``run`` itself if the log has it as of ``position``; ``latest``: the
        last run entered. InputError otherwise."""
        from uok.errors import InputError

        runs = self.states(position, ["runs"])["runs"]
        entered = {rid: r for rid, r in runs.items() if r.entered_at is not None}
        if run == "latest":
            if not entered:
                raise InputError(f"the log has no run as of position {position}")
            return max(entered.values(), key=lambda r: r.entered_position).run_id
        if run not in entered:
            raise InputError(f"no run {run!r} in the log as of position {position} (see `uok status`)")
        return run

    # -- one run -------------------------------------------------------------------
    def timeline(self, run_id: str, position: int) -> RunTimeline:
        """The run's timeline as of ``position``: the cached one folded
        forward when ``position`` is at or after it (a live page), else folded
        from zero (time travel; not cached). The result is read-only and
        valid until the next call: callers hold :attr:`lock` while using it."""
        with self.lock:
            fold = self._live.get(run_id)
            if fold is None or fold.seen > position:
                fold = TimelineFold(run_id)
                self._fold(fold, run_id, 0, position)
                if run_id not in self._live:
                    self._remember(run_id, fold)
                return fold.timeline
            self._fold(fold, run_id, fold.seen, position)
            return fold.timeline

    def _remember(self, run_id: str, fold: TimelineFold) -> None:
        self._live[run_id] = fold
        while len(self._live) > 8:  # a few runs' timelines, not the whole history's
            del self._live[next(iter(self._live))]

    def _fold(self, fold: TimelineFold, run_id: str, after: int, upto: int) -> None:
        decode = codec.decode
        for r in self.store.read(after, upto=upto, stream=f"run:{run_id}", topics=self._topics):
            e = decode(r.topic, r.payload)
            if isinstance(e, PlanCompiled) and e.graph is None:  # referenced: the event holding it is earlier
                e = with_graph(self.store, r.position, e)
            fold.fold(r.position, e)
        fold.seen = max(fold.seen, upto)

    def unit_history(self, plan_id: str, unit_id: str, position: int) -> list[tuple[int, UnitTransitioned]]:
        """Every lifecycle step of one unit up to ``position``, across runs."""
        decode = codec.decode
        out = []
        with self.lock:
            for r in self.store.read(0, upto=position, stream=f"unit:{plan_id}:{unit_id}"):
                e = decode(r.topic, r.payload)
                if isinstance(e, UnitTransitioned):
                    out.append((r.position, e))
        return out
