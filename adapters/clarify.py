"""Clarify rounds (behaviour §11): a task asks a question over the bus, at
most its plan's number of rounds, counted from the log.

The count is the version of the stream ``clarify:<plan>:<unit>`` (one
``ClarifyAsked`` per round, pinned to its round), so it survives kill -9
and restarts, and two racing asks cannot both take the last round: the
loser fails on UNIQUE(stream, version) and is counted again. The limit is
the unit's ``clarify_rounds`` in the plan's latest ``PlanCompiled``. A
question past it is refused (``ClarifyRefused``, exit 2, the limit named).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from uok.adapters.eventlog import EventLog
from uok.adapters.secrets import redact
from uok.domain import events as ev
from uok.domain.log import codec
from uok.domain.log.errors import IntegrityError
from uok.domain.plan.content import CompiledGraphs
from uok.domain.policies.clarify import refusal

from uok.errors import InputError

TOPIC = "clarify"


class ClarifyRefusedError(InputError):
    """A question past the task's clarify rounds (exit 2)."""


class Round(NamedTuple):
    round: int
    limit: int
    message_id: str
    agent: str  # the task's name on the bus: answers go to it


def agent_of(plan_id: str, unit_id: str) -> str:
    return f"{plan_id}:{unit_id}"


class ClarifyRounds:
    def __init__(self, log: EventLog, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.log, self.clock = log, clock

    def asked(self, plan_id: str, unit_id: str) -> int:
        return self.log.store.stream_version(f"clarify:{plan_id}:{unit_id}")

    def limit(self, plan_id: str, unit_id: str) -> int:
        """The unit's rounds in its plan's latest compiled graph (0: not a clarify task)."""
        graph = None
        graphs = CompiledGraphs()
        topics = [f"PlanCompiled/v{v}" for v in range(1, ev.PlanCompiled.VERSION + 1)]
        for r in self.log.store.read(0, topics=topics):
            e = codec.decode(r.topic, r.payload)
            if isinstance(e, ev.PlanCompiled) and e.plan_id == plan_id:
                graph = graphs.graph(e)
        if graph is None:
            raise InputError(f"no plan {plan_id!r} in the log")
        node = next((n for n in graph.nodes if n.id == unit_id), None)
        if node is None:
            raise InputError(f"plan {plan_id!r} has no unit {unit_id!r}")
        return node.clarify_rounds

    def ask(
        self, plan_id: str, unit_id: str, question: str, *, to: str = "operator", run_id: str = "", turn_id: str = ""
    ) -> Round:
        limit = self.limit(plan_id, unit_id)
        if limit == 0:
            raise InputError(f"unit {unit_id!r} of plan {plan_id!r} is not a clarify task (set clarify = true)")
        question = redact(question)
        for _ in range(8):  # a racing ask took the round: count again
            asked = self.asked(plan_id, unit_id)
            why = refusal(asked, limit)
            if why is not None:
                self.log.append(
                    [
                        ev.ClarifyRefused(
                            run_id=run_id,
                            at=self.clock(),
                            plan_id=plan_id,
                            unit_id=unit_id,
                            round=asked + 1,
                            limit=limit,
                            question=question,
                            reason=why,
                            turn_id=turn_id,
                        )
                    ]
                )
                raise ClarifyRefusedError(f"{unit_id}: {why}")
            message_id = uuid.uuid4().hex
            agent = agent_of(plan_id, unit_id)
            at = self.clock()
            asked_ev = ev.ClarifyAsked(
                run_id=run_id,
                at=at,
                plan_id=plan_id,
                unit_id=unit_id,
                round=asked + 1,
                limit=limit,
                question=question,
                recipient=to,
                message_id=message_id,
                turn_id=turn_id,
            )
            sent = ev.MessageSent(
                run_id=run_id,
                at=at,
                message_id=message_id,
                sender=agent,
                recipient=to,
                topic=TOPIC,
                payload={"question": question, "round": asked + 1, "limit": limit, "plan": plan_id, "unit": unit_id},
                turn_id=turn_id,
            )
            try:
                self.log.append([asked_ev, sent])
            except IntegrityError:
                continue
            return Round(asked + 1, limit, message_id, agent)
        raise InputError(f"{unit_id}: could not record the clarify round (the log kept changing)")
