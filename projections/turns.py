"""Turns read model: which turns are in flight in each run, what an agent
turn has done so far (its ``AgentStep`` events: how many steps and tool
calls, its last few steps; docs/agents.md), and how the finished ones
ended. A turn is in flight from ``TurnStarted`` to its
``TurnFinished``; a run recovered (or cut by a fork) while turns were in
flight leaves them *abandoned*: their process is gone. One part per run.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

import msgspec
from uok.domain import events as ev
from uok.projections.base import PartitionedProjection


class TurnView(msgspec.Struct, kw_only=True, array_like=True, gc=False):
    unit_id: str
    unit_type: str = ""
    attempt: int = 0
    iteration: int = 0
    started_at: datetime | None = None
    position: int = 0
    steps: int = 0  # AgentStep events of this turn so far
    tool_calls: int = 0
    recent: list[str] = []  # the last RECENT steps, "seq kind: text"


class RunTurns(msgspec.Struct, kw_only=True, gc=False):
    in_flight: dict[str, TurnView] = {}
    started: int = 0
    finished: dict[str, int] = {}  # by TurnFinished.status
    abandoned: int = 0
    last_turn: str = ""


RECENT = 10  # steps of an in-flight agent turn kept for `uok state --at`


def step_line(e: ev.AgentStep) -> str:
    """One step as a line a person reads: ``3 tool_call Write {"file_path": ...}``."""
    what = " ".join(x for x in (e.tool, e.args or e.text) if x)
    if e.usage is not None:
        what = f"{e.usage.model} {e.usage.input_tokens} in / {e.usage.output_tokens} out"
    elif e.cost_usd is not None:
        what = f"{e.subtype} ${e.cost_usd:.4f} {what}".strip()
    what = what.replace("\n", " ")
    return f"{e.seq} {e.kind}" + (f" {what[:100]}" if what else "") + (" (error)" if e.is_error else "")


class TurnsProjection(PartitionedProjection):
    name: ClassVar[str] = "turns"
    version: ClassVar[int] = 2  # 2: agent steps of in-flight turns
    part_type: ClassVar[type] = RunTurns
    types: ClassVar[frozenset[str]] = frozenset(
        {"TurnStarted", "TurnFinished", "RunRecovered", "RunForked", "AgentStep"}
    )
    delta_density: ClassVar[int] = 10  # a delta every 100 events by default (base.py)

    def key(self, e):
        t = type(e)
        if t is ev.RunRecovered:
            return e.recovered_run
        if t is ev.TurnStarted or t is ev.TurnFinished or t is ev.AgentStep:
            return e.run_id
        return e.open_runs  # RunForked

    def apply_part(self, part: RunTurns, position: int, e) -> RunTurns:
        t = type(e)
        if t is ev.TurnStarted:
            part.in_flight[e.turn_id] = TurnView(
                unit_id=e.unit_id,
                unit_type=e.unit_type,
                attempt=e.attempt,
                iteration=e.iteration,
                started_at=e.at,
                position=position,
            )
            part.started += 1
            part.last_turn = e.turn_id
        elif t is ev.AgentStep:
            view = part.in_flight.get(e.turn_id)
            if view is not None:  # a late step of a finished turn changes nothing here
                view.steps += 1
                view.tool_calls += e.kind == "tool_call"
                view.recent = [*view.recent[-(RECENT - 1) :], step_line(e)]
        elif t is ev.TurnFinished:
            part.in_flight.pop(e.turn_id, None)
            part.finished[e.status] = part.finished.get(e.status, 0) + 1
        else:  # RunRecovered / RunForked: nobody will finish these turns
            part.abandoned += len(part.in_flight)
            part.in_flight = {}
        return part
