"""Clarify rounds (behaviour §11, the seed's ``PLAN_V2_CLARIFY_ROUND_LIMIT``):
a task asking the operator (or another agent) a question, and a question
refused because the task used up its rounds.

Both are written by ``uok clarify ask`` (the shell, inside the task) and
carry the task's run, so the count is the log's: a kill -9 and a restart
forget nothing.
"""

from __future__ import annotations

from typing import ClassVar

from uok.domain.events.base import Event


class ClarifyAsked(Event, frozen=True, kw_only=True):
    """Round ``round`` of a clarify task: its question, sent on the bus as
    ``message_id``. Stored as version ``round`` of the stream
    ``clarify:<plan>:<unit>``, so two racing asks cannot take one round."""

    OBSERVED: ClassVar[bool] = True

    plan_id: str
    unit_id: str
    round: int
    limit: int
    question: str
    recipient: str
    message_id: str = ""
    turn_id: str = ""

    def stream(self) -> str:
        return f"clarify:{self.plan_id}:{self.unit_id}"

    def pinned_version(self) -> int | None:
        return self.round


class ClarifyRefused(Event, frozen=True, kw_only=True):
    """A question past the task's limit: refused, and recorded as refused."""

    OBSERVED: ClassVar[bool] = True

    plan_id: str
    unit_id: str
    round: int  # the round it would have been
    limit: int
    question: str
    reason: str
    turn_id: str = ""

    def stream(self) -> str:
        return f"clarify-refused:{self.plan_id}:{self.unit_id}"  # never the run's own stream: the task is not the run
