"""The driven plan's ready and doomed units, kept from transitions (issue 15).

Why: dispatch (``rules.dispatch``) asks after every step which queued units
have all their dependencies completed (*ready*) and which have one that
ended without completing (*doomed*: to be blocked). Answering by scanning
the plan made every step cost O(units): 15 ms per step on a 10,000-task
plan. Here each unit keeps two counts over its dependencies (in-degree
counting): how many are not completed yet (``unmet``) and how many ended
final but not completed (``bad``). A ``UnitTransitioned`` of one unit
updates the counts of its dependents only, so a step costs what the units
it moves touch, not the plan's size.

The answers are exactly those of the scan they replace (the committed
fixture logs replay with no divergence): a dependency counts only if it is
a unit of the plan; *completed* means the record's last outcome is
``completed`` (whatever its state since); *final* means ``notified``; both
lists come in the graph's order (``rank``, the index in ``graph.order``).

The schedule is derived, never recorded: it is built from the folded
records the first time dispatch needs it and dropped whenever the driven
graph changes (its plan compiled, a sub-agent added), so a kernel folded
from zero, restored from a snapshot or refolded after a failed append
holds the same one.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable

import msgspec
from uok.domain.plan import UnitGraph, UnitNode
from uok.domain.policies.lifecycle import UnitRecord

Flags = tuple[bool, bool, bool, bool]  # (completed, ended badly, queued, final)
NO_RECORD: Flags = (False, False, False, False)


def flags(rec: UnitRecord | None) -> Flags:
    """What the schedule reads of a unit's record."""
    if rec is None:
        return NO_RECORD
    final = rec.state == "notified"
    completed = rec.outcome == "completed"
    return completed, final and not completed, rec.state == "queued", final


def _insert(ranks: list[int], r: int) -> None:
    i = bisect_left(ranks, r)
    if i == len(ranks) or ranks[i] != r:
        ranks.insert(i, r)


def _remove(ranks: list[int], r: int) -> None:
    i = bisect_left(ranks, r)
    if i < len(ranks) and ranks[i] == r:
        del ranks[i]


class Schedule(msgspec.Struct, kw_only=True, gc=False):
    """Ready and doomed units of one plan, and how many are not final yet."""

    plan_id: str
    ids: tuple[str, ...]  # graph.order: a unit's rank is its index here
    rank: dict[str, int]
    dependents: dict[str, list[str]]  # unit -> units of the plan depending on it (once per edge)
    unmet: dict[str, int]  # unit -> dependencies not completed
    bad: dict[str, int]  # unit -> dependencies final but not completed
    queued: set[str] = msgspec.field(default_factory=set)
    ready: list[int] = []  # ranks of queued units with unmet == 0, sorted
    doomed: list[int] = []  # ranks of queued units with bad > 0, sorted
    unsettled: int = 0  # units of the plan not final (no record counts as not final)
    completed: int = 0  # units of the plan final with their last outcome completed
    ended_badly: int = 0  # units of the plan final otherwise (failed, blocked, cancelled, ...)

    @classmethod
    def build(cls, graph: UnitGraph, nodes: dict[str, UnitNode], unit: Callable[[str], UnitRecord | None]) -> Schedule:
        """One pass over the plan (O(units + edges))."""
        state = {unit_id: flags(unit(unit_id)) for unit_id in nodes}
        s = cls(
            plan_id=graph.plan_id,
            ids=graph.order,
            rank={unit_id: i for i, unit_id in enumerate(graph.order)},
            dependents={unit_id: [] for unit_id in nodes},
            unmet={},
            bad={},
        )
        for node in graph.nodes:
            unmet = bad = 0
            for dep in node.depends_on:
                f = state.get(dep)
                if f is None:
                    continue  # not a unit of the plan: not waited for
                s.dependents[dep].append(node.id)
                unmet += not f[0]
                bad += f[1]
            s.unmet[node.id], s.bad[node.id] = unmet, bad
        for unit_id, f in state.items():
            s.unsettled += not f[3]
            s.completed += f[0] and f[3]
            s.ended_badly += f[1]
            if f[2]:
                s.queued.add(unit_id)
                s._place(unit_id)
        return s

    # ------------------------------------------------------------------ folding

    def moved(self, unit_id: str, before: Flags, after: Flags) -> None:
        """A unit of the plan moved from ``before`` to ``after``: update its
        dependents' counts and the sets it or they belong to."""
        if unit_id not in self.unmet:
            return  # not a unit of the plan (yet): nothing waits for it
        if before[0] != after[0] or before[1] != after[1]:
            d_unmet, d_bad = before[0] - after[0], after[1] - before[1]
            for dependent in self.dependents[unit_id]:
                self.unmet[dependent] += d_unmet
                self.bad[dependent] += d_bad
                self._place(dependent)
        if after[2]:
            self.queued.add(unit_id)
        else:
            self.queued.discard(unit_id)
        self._place(unit_id)
        self.unsettled += before[3] - after[3]
        self.completed += (after[0] and after[3]) - (before[0] and before[3])
        self.ended_badly += after[1] - before[1]

    def _place(self, unit_id: str) -> None:
        r = self.rank.get(unit_id)
        if r is None:
            return  # not in the graph's order: never dispatched nor blocked (as before)
        queued = unit_id in self.queued
        (_insert if queued and self.unmet[unit_id] == 0 else _remove)(self.ready, r)
        (_insert if queued and self.bad[unit_id] > 0 else _remove)(self.doomed, r)

    # ------------------------------------------------------------------ queries

    def first_ready(self, busy: set[str], count: int) -> list[str]:
        """The first ``count`` ready units not in ``busy``, in the graph's order."""
        out: list[str] = []
        ids = self.ids
        for r in self.ready:
            if len(out) >= count:
                break
            unit_id = ids[r]
            if unit_id not in busy:
                out.append(unit_id)
        return out

    def next_doomed(self, after: int) -> int | None:
        """The rank of the first doomed unit after rank ``after``, if any."""
        i = bisect_right(self.doomed, after)
        return self.doomed[i] if i < len(self.doomed) else None

    def settled(self, total: int) -> int:
        return total - self.unsettled


__all__ = ["NO_RECORD", "Flags", "Schedule", "flags"]
