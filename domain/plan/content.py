"""Plan content stored once per content hash (issue 11, item 6).

Every run records what its decisions depend on: the plan's text (with its
task files and glob matches) in ``KernelEntered`` and the compiled graph in
``PlanCompiled``. Recorded in full on every run, a large plan grew the log
by its size at every start. Runs that record a content hash (``plan_sha256``
on ``KernelEntered``, ``graph_sha256`` on ``PlanCompiled``) store each
distinct content once:

* the text: a ``KernelEntered`` with ``plan_by_ref`` carries no text, only
  ``plan_id`` and ``plan_sha256``; its text is that of the latest earlier
  ``KernelEntered`` of the same plan id holding text with that hash;
* the graph: a ``PlanCompiled`` whose ``graph`` is ``None`` carries only
  ``plan_id`` and ``graph_sha256``; its graph is that of the latest earlier
  ``PlanCompiled`` of the same plan id holding a graph with that hash.

A reference only ever points backwards, at an event of the same log, so
every prefix of a log (time travel, a fork at P) holds what its references
name. The kernel keeps the latest content of each plan (:class:`PlanContent`,
in ``KernelState.contents``); readers that fold the log in order resolve
graphs with :class:`CompiledGraphs`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Protocol

import msgspec
from uok.domain.errors import IntegrityFailure
from uok.domain.plan.model import UnitGraph

_ENC = msgspec.json.Encoder(order="deterministic")


class PlanContentMissing(IntegrityFailure, LookupError):
    """An event references plan content that no earlier event of the log holds."""


class PlanContent(msgspec.Struct, kw_only=True):
    """The latest content recorded for one plan: its text, as the latest
    ``KernelEntered`` holding text recorded it, and its graph, as the latest
    ``PlanCompiled`` holding a graph recorded it (each with its hash)."""

    text_sha256: str = ""
    source: str = ""
    files: dict[str, str] = {}
    globs: dict[str, tuple[str, ...]] = {}
    graph_sha256: str = ""
    graph: UnitGraph | None = None


def text_sha256(source: str, files: Mapping[str, str], globs: Mapping[str, tuple[str, ...]]) -> str:
    """SHA-256 (hex) of a plan's text as ``KernelEntered`` records it."""
    return hashlib.sha256(_ENC.encode([source, dict(files), {k: list(v) for k, v in globs.items()}])).hexdigest()


def graph_sha256(graph: UnitGraph) -> str:
    """SHA-256 (hex) of a compiled graph's encoding."""
    return hashlib.sha256(_ENC.encode(graph)).hexdigest()


class CompiledGraphs:
    """Resolves ``PlanCompiled`` events to their graphs for a reader that
    folds the log in order: :meth:`graph` of each ``PlanCompiled`` read
    (every one, in position order) returns its graph, held or referenced."""

    def __init__(self) -> None:
        self.latest: dict[str, tuple[str, UnitGraph]] = {}  # plan id -> (graph hash, graph)

    def graph(self, e: PlanCompiledLike) -> UnitGraph:
        if e.graph is not None:
            self.latest[e.plan_id] = (e.graph_sha256, e.graph)
            return e.graph
        held = self.latest.get(e.plan_id)
        if held is None or held[0] != e.graph_sha256:
            raise PlanContentMissing(
                f"run {e.run_id}: PlanCompiled references graph {e.graph_sha256[:12]} of plan {e.plan_id!r}, "
                "which no earlier PlanCompiled holds"
            )
        return held[1]


class PlanCompiledLike(Protocol):
    """The fields of ``PlanCompiled`` this module reads (the event lives in
    :mod:`uok.domain.events`, which imports this package)."""

    @property
    def run_id(self) -> str: ...

    @property
    def plan_id(self) -> str: ...

    @property
    def graph(self) -> UnitGraph | None: ...

    @property
    def graph_sha256(self) -> str: ...


__all__ = ["CompiledGraphs", "PlanContent", "PlanContentMissing", "graph_sha256", "text_sha256"]
