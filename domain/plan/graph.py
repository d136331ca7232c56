"""Execution-graph algorithms (behaviour §12): ordering, file conflicts, batching.

Everything here is a pure function of its arguments, so the kernel can call
it while folding events and replay gets the same answers.

**Tie-break.** Upstream sorts ids with JS ``localeCompare``; we use plain
Python string order (code points). The two differ for mixed case and some
punctuation (``"B" < "a"`` here, not in ``localeCompare``), which is fine as
long as it is *one* fixed rule: determinism, not a particular collation, is
what replay needs (behaviour §19).

Functions taking nodes accept anything with ``id``, ``depends_on`` and
``writes`` attributes (:class:`NodeLike`): a :class:`uok.domain.plan.UnitNode`, or
the small :class:`Node` below.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Protocol

import msgspec
from uok.domain.errors import InputError, RuntimeFailure

MIN_WORKERS = 1
MAX_WORKERS = 8
DEFAULT_WORKERS = 2
DEADLOCK_MESSAGE = "Execution graph deadlock detected: no ready nodes and graph not complete"


class NodeLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def writes(self) -> Sequence[str]: ...


class Node(msgspec.Struct, frozen=True):
    """A minimal graph node, for callers (and tests) that have no UnitNode."""

    id: str
    depends_on: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()


class FileConflict(msgspec.Struct, frozen=True):
    """Two nodes declare a write to the same file (``node_a`` comes first)."""

    node_a: str
    node_b: str
    file: str


class CycleError(InputError, ValueError):
    """The dependencies form a cycle; ``cycle`` is one of them, closed.

    Arrows follow run order: ``["a", "b", "c", "a"]`` reads "a must run
    before b, b before c, c before a" (so b depends on a, and so on).
    """

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__("Execution graph has cyclic dependencies: " + " -> ".join(cycle))


class DeadlockError(RuntimeFailure, RuntimeError):
    """Units remain, none is ready and none is running: nothing can ever finish."""


# --------------------------------------------------------------------------- ordering


def topological_order(nodes: Iterable[NodeLike]) -> list[str]:
    """Deterministic Kahn order: among the nodes ready at each step, the
    smallest id goes first (a heap is the seed's "re-sort the queue", behaviour §12).

    Dependencies naming no node in ``nodes`` are ignored, as upstream.
    A dependency listed twice counts once (upstream would count it twice
    and decrement once, reporting a bogus cycle). Raises :class:`CycleError`
    naming one actual cycle if some nodes can never become ready, and
    ``ValueError`` on duplicate ids. O((V + E) log V).
    """
    deps: dict[str, set[str]] = {}
    for node in nodes:
        if node.id in deps:
            raise ValueError(f"duplicate node id {node.id!r}")
        deps[node.id] = set(node.depends_on)
    dependents: dict[str, list[str]] = {nid: [] for nid in deps}
    indegree: dict[str, int] = {}
    for nid, ds in deps.items():
        known = [d for d in ds if d in deps]
        indegree[nid] = len(known)
        for d in known:
            dependents[d].append(nid)

    heap = [nid for nid, deg in indegree.items() if deg == 0]
    heapq.heapify(heap)
    order: list[str] = []
    while heap:
        current = heapq.heappop(heap)
        order.append(current)
        for nxt in dependents[current]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                heapq.heappush(heap, nxt)

    if len(order) != len(deps):
        stuck = {nid for nid, deg in indegree.items() if deg > 0}
        raise CycleError(_find_cycle(stuck, deps))
    return order


def _find_cycle(stuck: set[str], deps: dict[str, set[str]]) -> list[str]:
    """One cycle among the nodes Kahn could not release.

    Every stuck node has a stuck dependency (that is why it is stuck), so
    walking "smallest stuck dependency" from the smallest stuck node must
    revisit a node; the walk from that node's first visit is a cycle. It is
    reversed into run order and rotated to start at its smallest id so it reads the same
    however it was found.
    """
    seen: dict[str, int] = {}
    path: list[str] = []
    current = min(stuck)
    while current not in seen:
        seen[current] = len(path)
        path.append(current)
        current = min(d for d in deps[current] if d in stuck)
    cycle = path[seen[current] :][::-1]  # walked against the edges; report in run order
    start = cycle.index(min(cycle))
    cycle = cycle[start:] + cycle[:start]
    return [*cycle, cycle[0]]


# --------------------------------------------------------------------------- conflicts


def detect_file_conflicts(nodes: Sequence[NodeLike]) -> list[FileConflict]:
    """Every (earlier node, later node, shared file), in the seed's order (behaviour §12).

    The seed's loop is: for i < j in input order, for each file of j's
    writes (in j's order) that i also writes, report (i, j, file). We index
    file -> earlier writers instead of comparing all pairs, then sort the
    hits by (i, j, position in j's writes) to reproduce that order exactly.
    Cost: O(W + K log K) for W declared writes and K reported conflicts.
    """
    writers: dict[str, list[int]] = {}
    hits: list[tuple[int, int, int]] = []
    for j, node in enumerate(nodes):
        for pos, file in enumerate(node.writes):
            for i in writers.get(file, ()):
                hits.append((i, j, pos))
        for file in dict.fromkeys(node.writes):
            writers.setdefault(file, []).append(j)
    hits.sort()
    return [FileConflict(nodes[i].id, nodes[j].id, nodes[j].writes[pos]) for i, j, pos in hits]


# --------------------------------------------------------------------------- batching


def select_conflict_free_batch(
    ordered_ids: Sequence[str],
    max_parallel: int,
    has_conflict: Callable[[str, str], bool],
) -> list[str]:
    """Greedy, in the given order: take a candidate unless it conflicts with
    one already taken (``has_conflict(candidate, taken)``); stop at
    ``max_parallel``. Earlier ids win, so the caller's order is the priority.
    """
    if max_parallel <= 0 or not ordered_ids:
        return []
    selected: list[str] = []
    for candidate in ordered_ids:
        if len(selected) >= max_parallel:
            break
        if any(has_conflict(candidate, taken) for taken in selected):
            continue
        selected.append(candidate)
    return selected


def select_reactive_dispatch_batch(
    graph: Sequence[NodeLike],
    ready_ids: Sequence[str],
    max_parallel: int,
    in_flight_outputs: Iterable[str] = (),
) -> tuple[list[str], list[FileConflict]]:
    """Which ready units to dispatch now, without two writers of one file.

    ``conflicts`` are the file conflicts among the ready nodes (reported for
    the operator; enforcement is the selection). Walking ``ready_ids`` in
    order: skip ids not in ``graph``; skip a node one of whose dependencies
    is also ready but not selected yet; skip a node writing a file already
    claimed (by a running unit, ``in_flight_outputs``, or by a node selected
    earlier in this batch); stop at ``max_parallel``.
    """
    by_id = {node.id: node for node in graph}
    ready_nodes = [by_id[rid] for rid in ready_ids if rid in by_id]
    conflicts = detect_file_conflicts(ready_nodes)
    if not ready_nodes or max_parallel <= 0:
        return [], conflicts

    claimed = set(in_flight_outputs)
    ready_set = set(ready_ids)
    selected: list[str] = []
    selected_set: set[str] = set()
    for rid in ready_ids:
        if len(selected) >= max_parallel:
            break
        node = by_id.get(rid)
        if node is None:
            continue
        if any(dep in ready_set and dep not in selected_set for dep in node.depends_on):
            continue
        if any(file in claimed for file in node.writes):
            continue
        selected.append(node.id)
        selected_set.add(node.id)
        claimed.update(node.writes)
    return selected, conflicts


def clamp_workers(n: int | None = None) -> int:
    """Worker count clamped to 1..8 (behaviour §12: "max workers capped at 8");
    ``None`` means the upstream default of 2."""
    if n is None:
        return DEFAULT_WORKERS
    return max(MIN_WORKERS, min(MAX_WORKERS, int(n)))


def check_progress(remaining: Collection[str], ready: Collection[str], in_flight: Collection[str]) -> None:
    """Raise :class:`DeadlockError` when units remain but none is ready and
    none is running: waiting would wait forever, so fail loudly instead."""
    if remaining and not ready and not in_flight:
        raise DeadlockError(DEADLOCK_MESSAGE)
